//! Conflict resolution of one pushed row: a field-level three-way merge with the row's
//! `assumedMasterState` as the base. A field changed on one side only takes that side's
//! value; a field both sides changed to different values is a conflict, resolved by the
//! field's [`Strategy`] and reported as a [`FieldConflict`].

use serde_json::Value;
use uhlc::Timestamp;

use crate::sync::{
    clock,
    model::{Clocks, Content, Field},
    settings::{FieldStrategies, Strategy},
};

/// Who kept the field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Winner {
    /// The server's value stayed.
    Server,
    /// The pushed value replaced it.
    Client,
    /// Both versions were kept (text).
    Both,
}

impl Winner {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Server => "server",
            Self::Client => "client",
            Self::Both => "both",
        }
    }
}

/// One field both sides changed.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldConflict {
    /// The field.
    pub field: Field,
    /// How it was resolved.
    pub strategy: Strategy,
    /// Who kept it.
    pub winner: Winner,
    /// The common ancestor's value (none when the note was created on both sides).
    pub base: Option<Value>,
    /// The server's value.
    pub server: Value,
    /// The pushed value.
    pub client: Value,
    /// The value now stored.
    pub resolved: Value,
}

/// The outcome of a merge.
#[derive(Clone, Debug)]
pub struct Merged {
    /// The content to store.
    pub content: Content,
    /// Fields whose stored value changed (their clocks become the row's stamp).
    pub written: Vec<Field>,
    /// Fields both sides changed.
    pub conflicts: Vec<FieldConflict>,
}

/// The separator between the two versions of a text field kept by [`Strategy::KeepBoth`].
pub const KEEP_BOTH_SEPARATOR: &str = "\n\n=== other version ===\n\n";

/// The strategy configured for `field`.
pub fn strategy_of(strategies: &FieldStrategies, field: Field) -> Strategy {
    match field {
        Field::Title => strategies.title,
        Field::Body => strategies.body,
        Field::Done => strategies.done,
        Field::Position => strategies.position,
        Field::Tags => strategies.tags,
        Field::Deleted => strategies.deleted,
    }
}

/// Merges `client` into `server` with `base` as the common ancestor; `stamp` is the row's
/// clock, compared with the server's per-field clocks for last-writer-wins.
pub fn merge(
    base: Option<&Content>,
    server: &Content,
    clocks: &Clocks,
    client: &Content,
    stamp: &Timestamp,
    strategies: &FieldStrategies,
) -> Merged {
    let mut content = server.clone();
    let mut written = Vec::new();
    let mut conflicts = Vec::new();
    for field in Field::ALL {
        if client.same(server, field) {
            continue;
        }
        let client_changed = base.is_none_or(|b| !client.same(b, field));
        let server_changed = base.is_none_or(|b| !server.same(b, field));
        if !client_changed {
            continue;
        }
        if !server_changed {
            take(&mut content, client, field);
            written.push(field);
            continue;
        }
        let mut strategy = strategy_of(strategies, field);
        if strategy == Strategy::KeepBoth && !field.is_text() {
            strategy = Strategy::LastWriterWins;
        }
        let winner = match strategy {
            Strategy::ServerWins => Winner::Server,
            Strategy::LastWriterWins => {
                if clock::newer(stamp, clocks.get(field.as_str()).map(String::as_str)) {
                    Winner::Client
                } else {
                    Winner::Server
                }
            }
            Strategy::KeepBoth => Winner::Both,
        };
        match winner {
            Winner::Server => {}
            Winner::Client => {
                take(&mut content, client, field);
                written.push(field);
            }
            Winner::Both => {
                let (s, c) = match field {
                    Field::Title => (&server.title, &client.title),
                    _ => (&server.body, &client.body),
                };
                let both = format!("{s}{KEEP_BOTH_SEPARATOR}{c}");
                match field {
                    Field::Title => content.title = both,
                    _ => content.body = both,
                }
                written.push(field);
            }
        }
        conflicts.push(FieldConflict {
            field,
            strategy,
            winner,
            base: base.map(|b| b.get(field)),
            server: server.get(field),
            client: client.get(field),
            resolved: content.get(field),
        });
    }
    Merged { content, written, conflicts }
}

/// Server-wins for the whole row: nothing is applied; every field both sides changed is
/// reported with the server as the winner.
pub fn server_wins(base: Option<&Content>, server: &Content, client: &Content) -> Merged {
    let conflicts = Field::ALL
        .into_iter()
        .filter(|&f| !client.same(server, f) && base.is_none_or(|b| !client.same(b, f) && !server.same(b, f)))
        .map(|field| FieldConflict {
            field,
            strategy: Strategy::ServerWins,
            winner: Winner::Server,
            base: base.map(|b| b.get(field)),
            server: server.get(field),
            client: client.get(field),
            resolved: server.get(field),
        })
        .collect();
    Merged { content: server.clone(), written: Vec::new(), conflicts }
}

fn take(content: &mut Content, from: &Content, field: Field) {
    match field {
        Field::Title => content.title = from.title.clone(),
        Field::Body => content.body = from.body.clone(),
        Field::Done => content.done = from.done,
        Field::Position => content.position = from.position,
        Field::Tags => content.tags = from.tags.clone(),
        Field::Deleted => content.deleted = from.deleted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(title: &str, body: &str, done: bool) -> Content {
        Content { title: title.into(), body: body.into(), done, position: 1.0, tags: vec![], deleted: false }
    }

    #[test]
    fn different_fields_both_survive() {
        let base = note("a", "b", false);
        let server = note("A", "b", false);
        let client = note("a", "b", true);
        let stamp = uhlc::HLC::default().new_timestamp();
        let merged = merge(Some(&base), &server, &Clocks::new(), &client, &stamp, &FieldStrategies::default());
        assert_eq!(merged.content, note("A", "b", true));
        assert_eq!(merged.written, vec![Field::Done]);
        assert!(merged.conflicts.is_empty());
    }

    #[test]
    fn same_field_follows_its_strategy() {
        let base = note("a", "b", false);
        let server = note("server", "server body", false);
        let client = note("client", "client body", false);
        let hlc = uhlc::HLC::default();
        let older = hlc.new_timestamp();
        let mut clocks = Clocks::new();
        clocks.insert("title".into(), hlc.new_timestamp().to_string());
        let merged = merge(Some(&base), &server, &clocks, &client, &older, &FieldStrategies::default());
        // title: last-writer-wins, the server's stamp is newer; body: keep both.
        assert_eq!(merged.content.title, "server");
        assert_eq!(merged.content.body, format!("server body{KEEP_BOTH_SEPARATOR}client body"));
        assert_eq!(merged.conflicts.len(), 2);
        assert_eq!(merged.conflicts[0].winner, Winner::Server);
        assert_eq!(merged.conflicts[1].winner, Winner::Both);
        let newer = hlc.new_timestamp();
        let merged = merge(Some(&base), &server, &clocks, &client, &newer, &FieldStrategies::default());
        assert_eq!(merged.content.title, "client");
    }
}
