//! Raw-SQL helpers shared by the hand-written statements: positional placeholder lists and
//! their values.

use sea_orm::Value;

/// `$start, $start+1, ...` — `n` positional placeholders (both SQLite and PostgreSQL accept
/// `$N`).
pub fn placeholders(start: usize, n: usize) -> String {
    let mut out = String::with_capacity(n * 5);
    for i in 0..n {
        if i > 0 {
            out.push_str(", ");
        }
        out.push('$');
        out.push_str(&(start + i).to_string());
    }
    out
}

/// Values for SQL whose `$1` is `head` and `$2..` are `ids` (see [`placeholders`]).
pub fn head_and_ids(head: impl Into<Value>, ids: &[i64]) -> Vec<Value> {
    let mut values = Vec::with_capacity(ids.len() + 1);
    values.push(head.into());
    values.extend(ids.iter().map(|id| Value::from(*id)));
    values
}
