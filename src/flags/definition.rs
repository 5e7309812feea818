//! A feature flag as stored and as `mobile-bff flags` writes it: Unleash's feature model
//! (strategies with constraints and segments, weighted variants with overrides, dependencies
//! on other flags), in Unleash's JSON, so a flag exported from Unleash can be imported as it
//! is and Unleash's client specification checks the evaluator (`flags::evaluate`).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

/// A flag.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Feature {
    /// Its key (`new-checkout`).
    pub name: String,
    /// What it is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Off is off for everyone (the kill switch).
    pub enabled: bool,
    /// Who gets it: on when any strategy matches (on for everyone when there is none).
    #[serde(default)]
    pub strategies: Vec<Strategy>,
    /// Variants of an enabled flag (multivariate flags), chosen by weight.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<Variant>,
    /// Flags that must be on (or off) first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<Dependency>,
}

/// A strategy: its constraints (and segments' constraints) must all hold, then its own rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Strategy {
    /// `default`, `flexibleRollout`, `userWithId`, `gradualRolloutUserId`,
    /// `gradualRolloutSessionId`, `gradualRolloutRandom`, `remoteAddress`.
    pub name: String,
    /// Its parameters (`rollout`, `stickiness`, `groupId`, `userIds`, `IPs`, …), as text.
    #[serde(default, deserialize_with = "text_map")]
    pub parameters: BTreeMap<String, String>,
    /// Conditions on the context.
    #[serde(default)]
    pub constraints: Vec<Constraint>,
    /// Ids of shared constraint sets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<i64>,
    /// Variants given when this strategy is the one that matched.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<Variant>,
}

/// A condition on one context field.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Constraint {
    /// `userId`, `sessionId`, `remoteAddress`, `environment`, `appName`, `currentTime`, or a
    /// property (`platform`, `appVersion`, `osVersion`, `locale`, `deviceId`, …).
    pub context_name: String,
    /// `IN`, `NOT_IN`, `STR_CONTAINS`, `STR_STARTS_WITH`, `STR_ENDS_WITH`, `NUM_EQ`, `NUM_GT`,
    /// `NUM_GTE`, `NUM_LT`, `NUM_LTE`, `DATE_AFTER`, `DATE_BEFORE`, `SEMVER_EQ`, `SEMVER_GT`,
    /// `SEMVER_GTE`, `SEMVER_LT`, `SEMVER_LTE`, `REGEX`, `IN_CIDR`; anything else never holds.
    pub operator: String,
    /// Values for the list operators.
    #[serde(default, deserialize_with = "text_list")]
    pub values: Vec<String>,
    /// The value for the single-value operators.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "text_option")]
    pub value: Option<String>,
    /// Negates the result.
    #[serde(default)]
    pub inverted: bool,
    /// Compare text ignoring case.
    #[serde(default)]
    pub case_insensitive: bool,
}

/// A variant of a multivariate flag.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Variant {
    /// Its name (`blue`).
    pub name: String,
    /// Its share (relative to the others' weights).
    #[serde(default)]
    pub weight: u32,
    /// `variable` or `fix` (kept, not used: weights are relative).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_type: Option<String>,
    /// Which context field keeps a user on one variant (`default`: user, session, address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stickiness: Option<String>,
    /// What the app receives with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Payload>,
    /// Context values that always get this variant.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<Override>,
}

/// A variant's payload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    /// `string`, `json`, `csv` or `number`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The value, as text.
    pub value: String,
}

/// Context values pinned to a variant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Override {
    /// The context field.
    pub context_name: String,
    /// Its values.
    #[serde(deserialize_with = "text_list")]
    pub values: Vec<String>,
}

/// A shared set of constraints strategies refer to by id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    /// Its id.
    pub id: i64,
    /// Its constraints.
    #[serde(default)]
    pub constraints: Vec<Constraint>,
}

/// A flag this flag depends on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dependency {
    /// The parent flag.
    pub feature: String,
    /// Whether the parent must be on (default) or off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// The parent must have one of these variants.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<String>,
}

fn text(value: serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s),
        other => Some(other.to_string()),
    }
}

fn text_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let map = Option::<BTreeMap<String, serde_json::Value>>::deserialize(d)?.unwrap_or_default();
    Ok(map.into_iter().filter_map(|(k, v)| text(v).map(|v| (k, v))).collect())
}

fn text_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let list = Option::<Vec<serde_json::Value>>::deserialize(d)?.unwrap_or_default();
    Ok(list.into_iter().filter_map(text).collect())
}

fn text_option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<serde_json::Value>::deserialize(d)?.and_then(text))
}

/// The longest flag key.
pub const MAX_KEY_CHARS: usize = 100;

/// Whether `key` is a usable flag key: 1 to 100 printable characters without spaces or `/`
/// (it is a path segment in OFREP).
pub fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.chars().count() <= MAX_KEY_CHARS
        && key.chars().all(|c| !c.is_control() && !c.is_whitespace() && c != '/')
}
