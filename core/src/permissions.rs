//! The permissions claim: which table commands and named actions a token grants.
//!
//! Grammar of one entry (case-sensitive):
//!   `<command>:<table>` or `<command>:<table>(<column>, ...)`
//!   command = select | insert | update | delete | truncate
//!   table   = `schema.table`, or a bare `table` meaning `public.table`
//! An entry that starts with a command and a colon must parse, or the token is refused.
//! Every other string is a named action, matched exactly by `can()` and `require()`.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    Select,
    Insert,
    Update,
    Delete,
    Truncate,
}

impl Command {
    const ALL: [Command; 5] = [
        Command::Select,
        Command::Insert,
        Command::Update,
        Command::Delete,
        Command::Truncate,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Command::Select => "select",
            Command::Insert => "insert",
            Command::Update => "update",
            Command::Delete => "delete",
            Command::Truncate => "truncate",
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One table grant. `columns: None` means every column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableGrant {
    pub command: Command,
    pub schema: String,
    pub table: String,
    pub columns: Option<Vec<String>>,
}

/// What the claim grants, parsed once at authenticate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permissions {
    pub tables: Vec<TableGrant>,
    pub actions: Vec<String>,
}

/// Why a permissions claim makes the token invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PermissionError {
    NotArray,
    Malformed(String),
}

impl fmt::Display for PermissionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PermissionError::NotArray => f.write_str("the permissions claim is not an array of strings"),
            PermissionError::Malformed(entry) => {
                write!(
                    f,
                    "permissions entry \"{}\" does not parse",
                    crate::error::printable(entry)
                )
            }
        }
    }
}

/// Why a table command is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    Table,
    Column(String),
}

impl Permissions {
    /// Parses the claim value.
    pub fn parse(claim: &Value) -> Result<Permissions, PermissionError> {
        let entries = claim.as_array().ok_or(PermissionError::NotArray)?;
        let mut out = Permissions::default();
        for entry in entries {
            let text = entry.as_str().ok_or(PermissionError::NotArray)?;
            match table_command(text) {
                Some((command, rest)) => out
                    .tables
                    .push(parse_table(command, rest).ok_or_else(|| PermissionError::Malformed(text.to_owned()))?),
                None => out.actions.push(text.to_owned()),
            }
        }
        Ok(out)
    }

    pub fn can(&self, action: &str) -> bool {
        self.actions.iter().any(|a| a == action)
    }

    /// Whether `command` on `schema.table` is granted for all of `columns` (empty: no columns
    /// named, e.g. DELETE or a count(*)).
    pub fn allows(&self, command: Command, schema: &str, table: &str, columns: &[&str]) -> Result<(), Denial> {
        let grants: Vec<&TableGrant> = self
            .tables
            .iter()
            .filter(|g| g.command == command && g.schema == schema && g.table == table)
            .collect();
        if grants.is_empty() {
            return Err(Denial::Table);
        }
        if grants.iter().any(|g| g.columns.is_none()) {
            return Ok(());
        }
        for column in columns {
            let listed = grants
                .iter()
                .any(|g| g.columns.as_ref().is_some_and(|c| c.iter().any(|n| n == column)));
            if !listed {
                return Err(Denial::Column((*column).to_owned()));
            }
        }
        Ok(())
    }
}

fn table_command(entry: &str) -> Option<(Command, &str)> {
    Command::ALL.iter().find_map(|c| {
        entry
            .strip_prefix(c.name())
            .and_then(|r| r.strip_prefix(':'))
            .map(|r| (*c, r))
    })
}

fn parse_table(command: Command, rest: &str) -> Option<TableGrant> {
    let (name, columns) = match rest.split_once('(') {
        None => (rest, None),
        Some((name, cols)) => {
            let cols = cols.strip_suffix(')')?;
            let list: Vec<String> = cols.split(',').map(|c| c.trim().to_owned()).collect();
            if list.iter().any(|c| !is_identifier(c)) || command == Command::Delete || command == Command::Truncate {
                return None;
            }
            (name, Some(list))
        }
    };
    let (schema, table) = match name.split_once('.') {
        Some((s, t)) => (s, t),
        None => ("public", name),
    };
    if !is_identifier(schema) || !is_identifier(table) {
        return None;
    }
    Some(TableGrant {
        command,
        schema: schema.to_owned(),
        table: table.to_owned(),
        columns,
    })
}

/// A plain SQL identifier as stored in the catalog: letters, digits, `_` and `$`, not starting
/// with a digit or `$`, at most 63 bytes. Quoted identifiers are not part of the grammar.
fn is_identifier(s: &str) -> bool {
    let mut bytes = s.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
    first_ok && s.len() <= 63 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<Permissions, PermissionError> {
        Permissions::parse(&v)
    }

    #[test]
    fn grammar() {
        let p = parse(json!([
            "select:orders",
            "update:sales.orders(status, note)",
            "export-report"
        ]))
        .unwrap();
        assert_eq!(
            p.tables[0],
            TableGrant {
                command: Command::Select,
                schema: "public".into(),
                table: "orders".into(),
                columns: None
            }
        );
        assert_eq!(p.tables[1].schema, "sales");
        assert_eq!(p.tables[1].columns, Some(vec!["status".into(), "note".into()]));
        assert_eq!(p.actions, vec!["export-report"]);
    }

    #[test]
    fn command_names_are_case_sensitive() {
        let p = parse(json!(["SELECT:orders", "Select:orders"])).unwrap();
        assert!(p.tables.is_empty());
        assert_eq!(p.actions.len(), 2);
        assert_eq!(p.allows(Command::Select, "public", "orders", &[]), Err(Denial::Table));
    }

    #[test]
    fn malformed_table_entries_refuse_the_token() {
        for bad in [
            "select:",
            "select:.orders",
            "select:a.b.c",
            "select:orders(",
            "select:orders()",
            "select:orders(a,)",
            "select:or ders",
            "select:orders;drop",
            "delete:orders(a)",
            "truncate:orders(a)",
            "select:\"Orders\"",
            "update:orders(a b)",
            "select:1orders",
        ] {
            assert_eq!(
                parse(json!([bad])),
                Err(PermissionError::Malformed(bad.to_owned())),
                "{bad}"
            );
        }
        assert_eq!(parse(json!("select:orders")), Err(PermissionError::NotArray));
        assert_eq!(parse(json!([1])), Err(PermissionError::NotArray));
    }

    #[test]
    fn columns_and_tables() {
        let p = parse(json!([
            "update:orders(status)",
            "select:orders",
            "select:public.items(id,name)"
        ]))
        .unwrap();
        assert_eq!(p.allows(Command::Update, "public", "orders", &["status"]), Ok(()));
        assert_eq!(
            p.allows(Command::Update, "public", "orders", &["status", "total"]),
            Err(Denial::Column("total".into()))
        );
        assert_eq!(p.allows(Command::Select, "public", "orders", &["anything"]), Ok(()));
        assert_eq!(p.allows(Command::Select, "public", "items", &["id"]), Ok(()));
        assert_eq!(
            p.allows(Command::Select, "public", "items", &["price"]),
            Err(Denial::Column("price".into()))
        );
        assert_eq!(p.allows(Command::Delete, "public", "orders", &[]), Err(Denial::Table));
        assert_eq!(p.allows(Command::Select, "other", "orders", &[]), Err(Denial::Table));
    }

    #[test]
    fn several_column_grants_combine() {
        let p = parse(json!(["update:orders(a)", "update:orders(b)"])).unwrap();
        assert_eq!(p.allows(Command::Update, "public", "orders", &["a", "b"]), Ok(()));
    }

    #[test]
    fn named_actions_are_exact() {
        let p = parse(json!(["refund", "Export"])).unwrap();
        assert!(p.can("refund"));
        assert!(!p.can("Refund"));
        assert!(!p.can("export"));
        assert!(!p.can(""));
    }
}
