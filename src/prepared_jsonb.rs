//! A jsonb value built once and returned many times: `authenticate()` hands back the same claims
//! on every use of a cached token, so it copies prepared bytes instead of printing and
//! re-parsing JSON each time.

use pgrx::pg_sys;
use pgrx::pgrx_sql_entity_graph::metadata::{ArgumentError, ReturnsError, ReturnsRef, SqlMappingRef, SqlTranslatable};
use pgrx::IntoDatum;
use std::ffi::CString;
use std::rc::Rc;

/// The bytes of one jsonb varlena (header included).
#[derive(Clone)]
pub struct PreparedJsonb(Rc<[u8]>);

impl PreparedJsonb {
    /// Builds the jsonb once through PostgreSQL's own input function.
    pub fn from_json_text(text: &str) -> Option<Self> {
        let text = CString::new(text).ok()?;
        // SAFETY: jsonb_in parses a valid C string into a palloc'd varlena; we copy it out whole.
        unsafe {
            let datum =
                pgrx::direct_function_call_as_datum(pg_sys::jsonb_in, &[Some(pg_sys::Datum::from(text.as_ptr()))])?;
            let varlena = datum.cast_mut_ptr::<pg_sys::varlena>();
            let len = pgrx::varsize_any(varlena);
            Some(PreparedJsonb(Rc::from(std::slice::from_raw_parts(
                varlena.cast::<u8>(),
                len,
            ))))
        }
    }
}

impl IntoDatum for PreparedJsonb {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        // SAFETY: a fresh palloc'd copy in the caller's memory context, as a return value must be.
        unsafe {
            let out = pg_sys::palloc(self.0.len()).cast::<u8>();
            std::ptr::copy_nonoverlapping(self.0.as_ptr(), out, self.0.len());
            Some(pg_sys::Datum::from(out))
        }
    }

    fn type_oid() -> pg_sys::Oid {
        pg_sys::JSONBOID
    }
}

// SAFETY: the datum returned is the palloc'd copy made by into_datum.
unsafe impl pgrx::callconv::BoxRet for PreparedJsonb {
    unsafe fn box_into<'fcx>(self, fcinfo: &mut pgrx::callconv::FcInfo<'fcx>) -> pgrx::datum::Datum<'fcx> {
        match self.into_datum() {
            // SAFETY: returning our own datum, as the trait requires.
            Some(datum) => unsafe { fcinfo.return_raw_datum(datum) },
            None => fcinfo.return_null(),
        }
    }
}

// SAFETY: the value is a jsonb datum, so it maps to the SQL type jsonb.
unsafe impl SqlTranslatable for PreparedJsonb {
    const TYPE_IDENT: &'static str = pgrx::pgrx_resolved_type!(PreparedJsonb);
    const TYPE_ORIGIN: pgrx::pgrx_sql_entity_graph::metadata::TypeOrigin =
        pgrx::pgrx_sql_entity_graph::metadata::TypeOrigin::External;
    const ARGUMENT_SQL: Result<SqlMappingRef, ArgumentError> = Ok(SqlMappingRef::literal("jsonb"));
    const RETURN_SQL: Result<ReturnsRef, ReturnsError> = Ok(ReturnsRef::One(SqlMappingRef::literal("jsonb")));
}
