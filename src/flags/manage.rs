//! Managing feature flags (`mobile-bff flags set|kill|import|list|audit`): every change is
//! one transaction that writes the flag and its audit row (who, when, the definition before
//! and after). Every replica serves the change within `versions.refresh_seconds`.

use std::fmt::Write as _;

use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::OnConflict,
};

use super::{
    FlagsError,
    definition::{Constraint, Feature, Strategy, Variant, valid_key},
    entities::{feature_flag, feature_flag_audit},
};
use crate::kernel::{db::Db, request::AppVersion};

/// Most flags a deployment keeps (each is evaluated for every bootstrap).
pub const MAX_FLAGS: u64 = 1_000;
/// Largest stored definition, in bytes.
pub const MAX_DEFINITION_BYTES: usize = 64 * 1024;

/// What `flags set` changes; `None` keeps the current value.
#[derive(Clone, Debug, Default)]
pub struct FlagChange {
    /// Turn the flag off (`--disable`); otherwise `set` turns it on.
    pub disable: bool,
    /// Percentage rollout, 0 to 100 with up to two decimals.
    pub rollout: Option<f64>,
    /// Only these platforms.
    pub platforms: Vec<String>,
    /// Only this app version and newer.
    pub min_version: Option<String>,
    /// `name:weight` pairs.
    pub variants: Vec<String>,
    /// What it is for.
    pub description: Option<String>,
}

fn stored(row: &feature_flag::Model) -> Result<Feature, FlagsError> {
    serde_json::from_str(&row.definition)
        .map_err(|err| FlagsError::OutOfRange(format!("the stored flag {} does not parse: {err}", row.key)))
}

/// Applies `change` to flag `key` (created when missing) as `actor`.
pub async fn set(db: &Db, actor: &str, key: &str, change: FlagChange) -> Result<Feature, FlagsError> {
    let current = find(db, key).await?;
    let mut feature = match &current {
        Some(row) => stored(row)?,
        None => Feature {
            name: key.to_owned(),
            description: None,
            enabled: true,
            strategies: Vec::new(),
            variants: Vec::new(),
            dependencies: Vec::new(),
        },
    };
    feature.enabled = !change.disable;
    if let Some(description) = change.description.clone() {
        feature.description = Some(description).filter(|d| !d.trim().is_empty());
    }
    if change.rollout.is_some() || !change.platforms.is_empty() || change.min_version.is_some() {
        feature.strategies = vec![targeting(key, &change)?];
    }
    if !change.variants.is_empty() {
        feature.variants = change.variants.iter().map(|v| variant(v)).collect::<Result<_, _>>()?;
    }
    write(db, actor, key, current, Some(feature.clone())).await?;
    Ok(feature)
}

/// Turns flag `key` off everywhere (the kill switch), keeping its rules for when it is set
/// on again.
pub async fn kill(db: &Db, actor: &str, key: &str) -> Result<Feature, FlagsError> {
    let current = find(db, key).await?.ok_or_else(|| FlagsError::OutOfRange(format!("no flag {key:?}")))?;
    let mut feature = stored(&current)?;
    feature.enabled = false;
    write(db, actor, key, Some(current), Some(feature.clone())).await?;
    Ok(feature)
}

/// Stores `definition` (an Unleash feature as JSON) as flag `key` (its `name` if no key).
pub async fn import(db: &Db, actor: &str, definition: &str) -> Result<Feature, FlagsError> {
    if definition.len() > MAX_DEFINITION_BYTES {
        return Err(FlagsError::OutOfRange(format!("a flag definition is at most {MAX_DEFINITION_BYTES} bytes")));
    }
    let feature: Feature = serde_json::from_str(definition)
        .map_err(|err| FlagsError::OutOfRange(format!("not an Unleash feature definition: {err}")))?;
    let current = find(db, &feature.name).await?;
    write(db, actor, &feature.name.clone(), current, Some(feature.clone())).await?;
    Ok(feature)
}

fn targeting(key: &str, change: &FlagChange) -> Result<Strategy, FlagsError> {
    let rollout = change.rollout.unwrap_or(100.0);
    if !(0.0..=100.0).contains(&rollout) || (rollout * 100.0).fract() != 0.0 {
        return Err(FlagsError::OutOfRange("--rollout must be 0 to 100 with at most two decimals".into()));
    }
    let mut constraints = Vec::new();
    if !change.platforms.is_empty() {
        let platforms = change
            .platforms
            .iter()
            .map(|p| super::admin::parse_platform(p).map(|p| p.as_str().to_owned()))
            .collect::<Result<Vec<_>, _>>()?;
        constraints.push(Constraint {
            context_name: "platform".into(),
            operator: "IN".into(),
            values: platforms,
            value: None,
            inverted: false,
            case_insensitive: false,
        });
    }
    if let Some(min) = &change.min_version {
        let version = AppVersion::parse(min).ok_or_else(|| FlagsError::InvalidVersion(min.clone()))?;
        constraints.push(Constraint {
            context_name: "appVersion".into(),
            operator: "SEMVER_GTE".into(),
            values: Vec::new(),
            value: Some(version.version.to_string()),
            inverted: false,
            case_insensitive: false,
        });
    }
    let parameters = [
        ("rollout".to_owned(), format!("{rollout}")),
        ("stickiness".to_owned(), "default".to_owned()),
        ("groupId".to_owned(), key.to_owned()),
    ]
    .into_iter()
    .collect();
    Ok(Strategy { name: "flexibleRollout".into(), parameters, constraints, segments: Vec::new(), variants: Vec::new() })
}

fn variant(spec: &str) -> Result<Variant, FlagsError> {
    let (name, weight) = spec.split_once(':').unwrap_or((spec, "1"));
    let weight: u32 = weight
        .trim()
        .parse()
        .ok()
        .filter(|w| (1..=1000).contains(w))
        .ok_or_else(|| FlagsError::OutOfRange(format!("variant {spec:?}: the weight must be 1 to 1000")))?;
    if !valid_key(name.trim()) {
        return Err(FlagsError::OutOfRange(format!("variant {spec:?}: the name must be 1 to 100 characters")));
    }
    Ok(Variant {
        name: name.trim().to_owned(),
        weight,
        weight_type: None,
        stickiness: Some("default".into()),
        payload: None,
        overrides: Vec::new(),
    })
}

fn check_key(key: &str) -> Result<(), FlagsError> {
    if valid_key(key) {
        Ok(())
    } else {
        Err(FlagsError::OutOfRange("a flag key is 1 to 100 characters without spaces or '/'".into()))
    }
}

async fn find(db: &Db, key: &str) -> Result<Option<feature_flag::Model>, FlagsError> {
    check_key(key)?;
    Ok(feature_flag::Entity::find_by_id(key.to_owned()).one(db.conn()).await?)
}

async fn write(
    db: &Db,
    actor: &str,
    key: &str,
    before: Option<feature_flag::Model>,
    after: Option<Feature>,
) -> Result<(), FlagsError> {
    check_key(key)?;
    let actor: String = actor.trim().chars().take(200).collect();
    let actor = if actor.is_empty() { "unknown".to_owned() } else { actor };
    let after_json =
        after.map(|f| serde_json::to_string(&f)).transpose().map_err(|e| FlagsError::OutOfRange(e.to_string()))?;
    if after_json.as_ref().is_some_and(|j| j.len() > MAX_DEFINITION_BYTES) {
        return Err(FlagsError::OutOfRange(format!("a flag definition is at most {MAX_DEFINITION_BYTES} bytes")));
    }
    let now = crate::kernel::db::now();
    let tx = db.begin_write().await?;
    if before.is_none() {
        let count = feature_flag::Entity::find().count(&*tx).await?;
        if count >= MAX_FLAGS {
            return Err(FlagsError::OutOfRange(format!("at most {MAX_FLAGS} flags")));
        }
    }
    if let Some(definition) = &after_json {
        use feature_flag::Column;
        feature_flag::Entity::insert(feature_flag::ActiveModel {
            key: Set(key.to_owned()),
            definition: Set(definition.clone()),
            updated_at: Set(now),
            updated_by: Set(actor.clone()),
        })
        .on_conflict(
            OnConflict::column(Column::Key)
                .update_columns([Column::Definition, Column::UpdatedAt, Column::UpdatedBy])
                .to_owned(),
        )
        .exec(&*tx)
        .await?;
    }
    feature_flag_audit::Entity::insert(feature_flag_audit::ActiveModel {
        flag_key: Set(key.to_owned()),
        actor: Set(actor),
        at: Set(now),
        before: Set(before.map(|b| b.definition)),
        after: Set(after_json),
        ..Default::default()
    })
    .exec(&*tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// A table of every flag, for `flags list`.
pub async fn list(db: &Db) -> Result<String, FlagsError> {
    let rows = feature_flag::Entity::find().order_by_asc(feature_flag::Column::Key).all(db.conn()).await?;
    let mut out = String::from("key                            state  rules  variants  updated (by)\n");
    for row in rows {
        let (state, rules, variants) = match stored(&row) {
            Ok(f) => {
                (if f.enabled { "on" } else { "OFF" }, f.strategies.len().to_string(), f.variants.len().to_string())
            }
            Err(_) => ("BROKEN", "-".into(), "-".into()),
        };
        let _ = writeln!(
            out,
            "{:<30} {state:<6} {rules:<6} {variants:<9} {} ({})",
            row.key,
            row.updated_at.to_rfc3339(),
            row.updated_by
        );
    }
    Ok(out)
}

/// The newest `limit` audit rows (of flag `key`, or of every flag).
pub async fn audit(db: &Db, key: Option<&str>, limit: u64) -> Result<String, FlagsError> {
    let mut query = feature_flag_audit::Entity::find().order_by_desc(feature_flag_audit::Column::Id).limit(limit);
    if let Some(key) = key {
        query = query.filter(feature_flag_audit::Column::FlagKey.eq(key));
    }
    let mut out = String::new();
    for row in query.all(db.conn()).await? {
        let _ = writeln!(
            out,
            "{} {} by {}\n  before: {}\n  after:  {}",
            row.at.to_rfc3339(),
            row.flag_key,
            row.actor,
            row.before.as_deref().unwrap_or("(none)"),
            row.after.as_deref().unwrap_or("(deleted)")
        );
    }
    Ok(out)
}
