//! The feature flags every replica evaluates from: an in-memory snapshot of the stored flags
//! and segments, replaced when the refresher (`policy::spawn_refresher`, every
//! `versions.refresh_seconds`) finds them changed — so `mobile-bff flags kill` is served by
//! every replica within that interval. Each snapshot has a version tag (a hash of what it
//! holds) for ETags: the same flags give the same tag on every replica. Each refresh reads only
//! the keys and write times; the definitions are read when those changed.

use std::{
    collections::BTreeMap,
    sync::{Arc, RwLock},
};

use sea_orm::{ConnectionTrait, DbErr, EntityTrait, QuerySelect};
use sha2::{Digest, Sha256};

use super::{
    definition::{Feature, Segment},
    entities::{feature_flag, feature_flag_segment},
    evaluate::{Context, Evaluation, EvaluationError, Rules},
};

/// One snapshot of the flags.
#[derive(Debug, Default, PartialEq)]
pub struct Catalog {
    /// The flags that parse, by key.
    pub features: BTreeMap<String, Feature>,
    /// Segments by id.
    pub segments: BTreeMap<i64, Segment>,
    /// Keys whose stored definition does not parse (they evaluate to `PARSE_ERROR`).
    pub broken: Vec<String>,
    /// A hash of every definition: equal tags, equal flags.
    pub tag: String,
}

impl Catalog {
    /// Builds a snapshot from stored rows.
    pub fn from_rows(flags: &[feature_flag::Model], segments: &[feature_flag_segment::Model]) -> Self {
        let mut hasher = Sha256::new();
        let mut catalog = Self::default();
        for row in flags {
            hasher.update(row.key.as_bytes());
            hasher.update([0]);
            hasher.update(row.definition.as_bytes());
            hasher.update([0]);
            match serde_json::from_str::<Feature>(&row.definition) {
                Ok(mut feature) => {
                    feature.name = row.key.clone();
                    catalog.features.insert(row.key.clone(), feature);
                }
                Err(err) => {
                    tracing::warn!(flag = %row.key, error = %err, "a stored flag does not parse");
                    catalog.broken.push(row.key.clone());
                }
            }
        }
        for row in segments {
            hasher.update(row.id.to_string().as_bytes());
            hasher.update([1]);
            hasher.update(row.definition.as_bytes());
            match serde_json::from_str::<Segment>(&row.definition) {
                Ok(segment) => {
                    catalog.segments.insert(row.id, segment);
                }
                Err(err) => tracing::warn!(segment = row.id, error = %err, "a stored segment does not parse"),
            }
        }
        catalog.tag = crate::kernel::idempotency::hex(&hasher.finalize()[..12]);
        catalog
    }

    /// Flag `key` for `context`.
    pub fn evaluate(&self, key: &str, context: &Context) -> Evaluation {
        if self.broken.iter().any(|k| k == key) {
            return Evaluation::failed(EvaluationError::ParseError);
        }
        Rules::new(&self.features, &self.segments).evaluate(key, context)
    }

    /// Every flag for `context`, by key.
    pub fn evaluate_all(&self, context: &Context) -> Vec<(String, Evaluation)> {
        let rules = Rules::new(&self.features, &self.segments);
        let mut all: Vec<(String, Evaluation)> =
            self.features.keys().map(|key| (key.clone(), rules.evaluate(key, context))).collect();
        all.extend(self.broken.iter().map(|key| (key.clone(), Evaluation::failed(EvaluationError::ParseError))));
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

/// Every stored flag and segment.
pub async fn load(
    conn: &impl ConnectionTrait,
) -> Result<(Vec<feature_flag::Model>, Vec<feature_flag_segment::Model>), DbErr> {
    Ok((feature_flag::Entity::find().all(conn).await?, feature_flag_segment::Entity::find().all(conn).await?))
}

/// What changes whenever a flag or segment is written (keys and write times, not the
/// definitions): the refresher reads this every interval and the definitions only when it moved.
async fn stamp(conn: &impl ConnectionTrait) -> Result<String, DbErr> {
    let flags: Vec<(String, chrono::DateTime<chrono::Utc>)> = feature_flag::Entity::find()
        .select_only()
        .columns([feature_flag::Column::Key, feature_flag::Column::UpdatedAt])
        .into_tuple()
        .all(conn)
        .await?;
    let segments: Vec<(i64, chrono::DateTime<chrono::Utc>)> = feature_flag_segment::Entity::find()
        .select_only()
        .columns([feature_flag_segment::Column::Id, feature_flag_segment::Column::UpdatedAt])
        .into_tuple()
        .all(conn)
        .await?;
    let mut hasher = Sha256::new();
    for (key, at) in &flags {
        hasher.update(format!("{key}\0{}\0", at.timestamp_micros()).as_bytes());
    }
    for (id, at) in &segments {
        hasher.update(format!("{id}\u{1}{}\0", at.timestamp_micros()).as_bytes());
    }
    Ok(crate::kernel::idempotency::hex(&hasher.finalize()[..12]))
}

/// The snapshot requests read.
#[derive(Debug, Default)]
pub struct FlagsCell {
    current: RwLock<Arc<Catalog>>,
    /// The [`stamp`] of the rows `current` was built from.
    stamp: std::sync::Mutex<Option<String>>,
}

impl FlagsCell {
    /// The flags now.
    pub fn current(&self) -> Arc<Catalog> {
        self.current.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Re-reads the stored flags through `conn` when their stamp moved; true when they changed.
    pub async fn reload(&self, conn: &impl ConnectionTrait) -> Result<bool, DbErr> {
        let stamp = stamp(conn).await?;
        if self.stamp.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).as_deref() == Some(stamp.as_str()) {
            return Ok(false);
        }
        let (flags, segments) = load(conn).await?;
        *self.stamp.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(stamp);
        let catalog = Catalog::from_rows(&flags, &segments);
        let mut current = self.current.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        if current.tag == catalog.tag {
            return Ok(false);
        }
        tracing::info!(flags = catalog.features.len(), tag = %catalog.tag, "feature flags changed");
        *current = Arc::new(catalog);
        Ok(true)
    }
}
