//! The permissions grammar (`permissions::Permissions::parse`) on attacker claim values.
//!
//! First byte, low bit: 0, the rest is JSON text (any value, as a token could carry);
//! 1, the rest is split on newlines into an array of strings, so the fuzzer mutates the
//! entries (`select:schema.table(col, ...)`, quoted names, named actions) directly.
//!
//! A parsed claim must be self-consistent:
//! - every entry becomes exactly one grant or one named action (the entry itself), in order,
//!   the same whether parsed alone or in the list;
//! - names are 1 to 63 bytes without NUL; no column list on delete or truncate, and no empty one;
//! - `allows` grants each grant's own columns, `can` each named action;
//! - a grant written back in the fully quoted form parses to the same grant.
#![no_main]

use jwt_guard_core::permissions::{Command, Permissions, TableGrant};
use jwt_guard_fuzz::check_message;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let claim = if mode & 1 == 0 {
        match jwt_guard_core::json::parse_strict(rest) {
            Ok(v) => v,
            Err(_) => return,
        }
    } else {
        let Ok(text) = std::str::from_utf8(rest) else {
            return;
        };
        Value::Array(text.split('\n').map(|s| Value::String(s.to_owned())).collect())
    };
    let p = match Permissions::parse(&claim) {
        Ok(p) => p,
        Err(e) => {
            check_message(&e.to_string());
            return;
        }
    };
    let entries = claim.as_array().expect("parsed claims are arrays");
    assert_eq!(p.tables.len() + p.actions.len(), entries.len());
    let (mut tables, mut actions) = (p.tables.iter(), p.actions.iter());
    for entry in entries {
        let text = entry.as_str().expect("parsed claims hold strings");
        let alone = Permissions::parse(&Value::Array(vec![entry.clone()])).expect("one entry parses");
        match (alone.tables.as_slice(), alone.actions.as_slice()) {
            ([g], []) => assert_eq!(Some(g), tables.next(), "grant out of order for {text:?}"),
            ([], [a]) => {
                assert_eq!(a, text, "a named action is not the entry itself");
                assert_eq!(Some(a), actions.next(), "action out of order for {text:?}");
            }
            _ => panic!("entry {text:?} gave {alone:?}"),
        }
    }
    for g in &p.tables {
        for name in [&g.schema, &g.table].into_iter().chain(g.columns.iter().flatten()) {
            assert!(
                !name.is_empty() && name.len() <= 63 && !name.contains('\0'),
                "bad name kept: {g:?}"
            );
        }
        if let Some(cols) = &g.columns {
            assert!(
                !matches!(g.command, Command::Delete | Command::Truncate),
                "columns on {g:?}"
            );
            assert!(!cols.is_empty());
        }
        let cols: Vec<&str> = g.columns.iter().flatten().map(String::as_str).collect();
        assert_eq!(p.allows(g.command, &g.schema, &g.table, &cols), Ok(()));
        let written = quoted(g);
        let again = Permissions::parse(&Value::Array(vec![Value::String(written.clone())])).unwrap();
        assert_eq!(
            again.tables,
            vec![g.clone()],
            "{written:?} does not parse back to {g:?}"
        );
    }
    for a in &p.actions {
        assert!(p.can(a));
    }
    let _ = p.allows(Command::Select, "public", "orders", &["id"]);
    let _ = serde_json::to_string(&p).expect("permissions serialize");
});

/// `command:"schema"."table"("c1", "c2")`, quotes doubled inside names.
fn quoted(g: &TableGrant) -> String {
    let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let mut out = format!("{}:{}.{}", g.command.name(), q(&g.schema), q(&g.table));
    if let Some(cols) = &g.columns {
        let list: Vec<String> = cols.iter().map(|c| q(c)).collect();
        out.push_str(&format!("({})", list.join(", ")));
    }
    out
}
