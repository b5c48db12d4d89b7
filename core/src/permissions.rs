//! The permissions claim: which table commands and named actions a token grants.
//!
//! Grammar of one entry (case-sensitive):
//!   `<command>:<table>` or `<command>:<table>(<column>, ...)`
//!   command = select | insert | update | delete | truncate
//!   table   = `schema.table`, or a bare `table` meaning `public.table`
//!   names   = plain identifiers as stored in the catalog (`A-Z a-z 0-9 _ $`, not starting with a
//!             digit or `$`), or double-quoted (`"order-items"`, `""` for a quote)
//!   columns are not allowed for delete and truncate.
//! An entry that parses completely is a table grant. Every other string is a named action,
//! matched exactly by `can()` and `require()`: Auth0-style `delete:order-items` or
//! `update:orders:status` are actions, never table grants, and never refuse the token.

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
}

impl fmt::Display for PermissionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PermissionError::NotArray => f.write_str("the permissions claim is not an array of strings"),
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
            match table_command(text).and_then(|(command, rest)| parse_table(command, rest)) {
                Some(grant) => out.tables.push(grant),
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
    let (first, rest) = identifier(rest)?;
    let (schema, table, rest) = match rest.strip_prefix('.') {
        Some(after) => {
            let (table, rest) = identifier(after)?;
            (first, table, rest)
        }
        None => ("public".to_owned(), first, rest),
    };
    let columns = match rest {
        "" => None,
        _ if matches!(command, Command::Delete | Command::Truncate) => return None,
        _ => Some(column_list(rest)?),
    };
    Some(TableGrant {
        command,
        schema,
        table,
        columns,
    })
}

/// `(a, "b c")` and nothing after it.
fn column_list(text: &str) -> Option<Vec<String>> {
    let mut rest = text.strip_prefix('(')?;
    let mut out = Vec::new();
    loop {
        let (name, after) = identifier(rest.trim_start())?;
        out.push(name);
        let after = after.trim_start();
        if let Some(r) = after.strip_prefix(',') {
            rest = r;
        } else {
            return (after == ")").then_some(out);
        }
    }
}

/// One identifier at the start of `text`: plain (as stored in the catalog: letters, digits,
/// `_` and `$`, not starting with a digit or `$`) or double-quoted; at most 63 bytes.
fn identifier(text: &str) -> Option<(String, &str)> {
    let (name, rest) = match text.strip_prefix('"') {
        Some(quoted) => {
            let mut name = String::new();
            let mut chars = quoted.char_indices();
            loop {
                let (i, c) = chars.next()?;
                if c != '"' {
                    name.push(c);
                } else if quoted[i + 1..].starts_with('"') {
                    name.push('"');
                    chars.next();
                } else {
                    break (name, &quoted[i + 1..]);
                }
            }
        }
        None => {
            let end = text
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '$'))
                .unwrap_or(text.len());
            let name = &text[..end];
            let first_ok = name
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
            if !first_ok {
                return None;
            }
            (name.to_owned(), &text[end..])
        }
    };
    (!name.is_empty() && name.len() <= 63 && !name.contains('\0')).then_some((name, rest))
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
    fn entries_that_do_not_parse_are_named_actions() {
        for entry in [
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
            "update:orders(a b)",
            "select:1orders",
            "delete:order-items",
            "update:orders:status",
            "read:messages",
        ] {
            let p = parse(json!([entry])).unwrap();
            assert!(p.tables.is_empty(), "{entry}");
            assert!(p.can(entry), "{entry}");
        }
        assert_eq!(parse(json!("select:orders")), Err(PermissionError::NotArray));
        assert_eq!(parse(json!([1])), Err(PermissionError::NotArray));
    }

    #[test]
    fn quoted_names_express_any_table_or_column() {
        let p = parse(json!([
            "delete:\"order-items\"",
            "select:\"My Schema\".\"Orders\"",
            "update:\"a\"\"b\"(\"total-amount\", note)"
        ]))
        .unwrap();
        assert_eq!(p.tables.len(), 3);
        assert_eq!(p.allows(Command::Delete, "public", "order-items", &[]), Ok(()));
        assert_eq!(p.allows(Command::Select, "My Schema", "Orders", &[]), Ok(()));
        assert_eq!(
            p.allows(Command::Update, "public", "a\"b", &["total-amount", "note"]),
            Ok(())
        );
        assert!(p.actions.is_empty());
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
