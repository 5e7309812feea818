//! Evaluating a flag for a context, with Unleash's semantics (strategies, constraint
//! operators, stickiness, variant weights and overrides, segments, dependencies) and a reason
//! in OpenFeature's vocabulary.
//!
//! One difference from Unleash, on purpose: where Unleash falls back to a random bucket when
//! a rollout has nobody to stick to (no user, no session), the product answers `ERROR` with
//! `TARGETING_KEY_MISSING` (the flag's default value, and the reason says why) instead of a
//! coin toss that changes on every request. [`Rules::unleash`] keeps Unleash's fallback, for
//! its specification.

use std::{collections::BTreeMap, net::IpAddr};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{
    definition::{Constraint, Feature, Payload, Segment, Strategy, Variant},
    hash,
};

/// Who is asking.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Context {
    /// The user (signed in: their id; OFREP: the `targetingKey`).
    pub user_id: Option<String>,
    /// The session (the device id).
    pub session_id: Option<String>,
    /// The client's IP address.
    pub remote_address: Option<String>,
    /// The server's environment (`flags.environment`).
    pub environment: Option<String>,
    /// The app's name.
    pub app_name: Option<String>,
    /// Evaluation time (now when absent).
    pub current_time: Option<DateTime<Utc>>,
    /// Everything else: `platform`, `appVersion`, `osVersion`, `locale`, `deviceId`, …
    #[serde(deserialize_with = "properties")]
    pub properties: BTreeMap<String, String>,
}

fn properties<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let map = Option::<BTreeMap<String, serde_json::Value>>::deserialize(d)?.unwrap_or_default();
    Ok(map
        .into_iter()
        .filter_map(|(k, v)| match v {
            serde_json::Value::String(s) => Some((k, s)),
            serde_json::Value::Null => None,
            other => Some((k, other.to_string())),
        })
        .collect())
}

impl Context {
    /// The value of a context field: the named fields first, then the properties.
    pub fn field(&self, name: &str) -> Option<String> {
        match name {
            "userId" => self.user_id.clone(),
            "sessionId" => self.session_id.clone(),
            "remoteAddress" => self.remote_address.clone(),
            "environment" => self.environment.clone(),
            "appName" => self.app_name.clone(),
            "currentTime" => Some(self.current_time.unwrap_or_else(Utc::now).to_rfc3339()),
            other => self.properties.get(other).cloned(),
        }
        .filter(|v| !v.is_empty())
    }

    fn default_stickiness(&self) -> Option<String> {
        self.field("userId").or_else(|| self.field("sessionId"))
    }
}

/// Why a flag has its value (OpenFeature's reasons).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, async_graphql::Enum)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Reason {
    /// The same for everyone (no strategy, or the `default` strategy).
    Static,
    /// A rule about this context matched (constraints, a user list, an override).
    TargetingMatch,
    /// A percentage rollout or a weighted variant split put this context in.
    Split,
    /// No rule matched: the default (off).
    Default,
    /// The flag is switched off.
    Disabled,
    /// It could not be evaluated: see the error code; the default value applies.
    Error,
}

/// Why an evaluation failed (OpenFeature's error codes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, async_graphql::Enum)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EvaluationError {
    /// No flag with that key.
    FlagNotFound,
    /// A rollout needs a user or device to stick to, and the context has none.
    TargetingKeyMissing,
    /// The context is malformed.
    InvalidContext,
    /// The flag's value is not of the type asked for.
    TypeMismatch,
    /// The stored definition cannot be read.
    ParseError,
    /// Anything else.
    General,
}

impl EvaluationError {
    /// The OpenFeature code (`FLAG_NOT_FOUND`, …), as OFREP answers it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FlagNotFound => "FLAG_NOT_FOUND",
            Self::TargetingKeyMissing => "TARGETING_KEY_MISSING",
            Self::InvalidContext => "INVALID_CONTEXT",
            Self::TypeMismatch => "TYPE_MISMATCH",
            Self::ParseError => "PARSE_ERROR",
            Self::General => "GENERAL",
        }
    }
}

/// The chosen variant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VariantResult {
    /// Its name (`disabled` when there is none).
    pub name: String,
    /// Whether a real variant was chosen.
    pub enabled: bool,
    /// Its payload.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<Payload>,
    /// Whether the flag itself is on.
    pub feature_enabled: bool,
}

impl VariantResult {
    fn disabled(feature_enabled: bool) -> Self {
        Self { name: "disabled".to_owned(), enabled: false, payload: None, feature_enabled }
    }
}

/// A flag's value for a context, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Evaluation {
    /// On or off.
    pub enabled: bool,
    /// The variant (`disabled` for an off or single-valued flag).
    pub variant: VariantResult,
    /// Why.
    pub reason: Reason,
    /// What went wrong, with reason `ERROR`.
    pub error: Option<EvaluationError>,
}

impl Evaluation {
    /// The answer for a failure: off, with the code.
    pub fn failed(error: EvaluationError) -> Self {
        Self { enabled: false, variant: VariantResult::disabled(false), reason: Reason::Error, error: Some(error) }
    }
}

/// The rules of evaluation: the flags, their segments, and what to do without a targeting key.
pub struct Rules<'a> {
    features: &'a BTreeMap<String, Feature>,
    segments: &'a BTreeMap<i64, Segment>,
    random_fallback: bool,
}

/// What a strategy made of the context.
enum Outcome {
    No,
    /// Matched, with the reason it gives.
    Yes(Reason),
    /// It needed a key to stick to and found none.
    NoKey,
}

impl<'a> Rules<'a> {
    /// The product's rules: no random buckets (a missing key is an error).
    pub fn new(features: &'a BTreeMap<String, Feature>, segments: &'a BTreeMap<i64, Segment>) -> Self {
        Self { features, segments, random_fallback: false }
    }

    /// Unleash's rules: a rollout without a key falls into a random bucket.
    pub fn unleash(features: &'a BTreeMap<String, Feature>, segments: &'a BTreeMap<i64, Segment>) -> Self {
        Self { features, segments, random_fallback: true }
    }

    /// Evaluates flag `key` for `context`.
    pub fn evaluate(&self, key: &str, context: &Context) -> Evaluation {
        self.evaluate_at_depth(key, context, 0)
    }

    fn evaluate_at_depth(&self, key: &str, context: &Context, depth: usize) -> Evaluation {
        let Some(feature) = self.features.get(key) else {
            return Evaluation::failed(EvaluationError::FlagNotFound);
        };
        let off = |reason| Evaluation { enabled: false, variant: VariantResult::disabled(false), reason, error: None };
        if !feature.enabled {
            return off(Reason::Disabled);
        }
        // A parent's dependencies are not followed (one level, as Unleash does).
        if depth == 0 && !self.dependencies_hold(feature, context) {
            return off(Reason::Default);
        }
        let mut matched: Option<(&Strategy, Reason)> = None;
        let mut missing_key = false;
        if feature.strategies.is_empty() {
            return self.with_variant(feature, None, context, Reason::Static);
        }
        for strategy in &feature.strategies {
            match self.strategy(feature, strategy, context) {
                Outcome::Yes(reason) => {
                    matched = Some((strategy, reason));
                    break;
                }
                Outcome::NoKey => missing_key = true,
                Outcome::No => {}
            }
        }
        match matched {
            Some((strategy, reason)) => self.with_variant(feature, Some(strategy), context, reason),
            None if missing_key => Evaluation::failed(EvaluationError::TargetingKeyMissing),
            None => off(Reason::Default),
        }
    }

    fn dependencies_hold(&self, feature: &Feature, context: &Context) -> bool {
        feature.dependencies.iter().all(|dependency| {
            // Only one level: a parent with dependencies of its own (a chain, a cycle) is
            // never satisfied.
            match self.features.get(&dependency.feature) {
                Some(parent) if parent.dependencies.is_empty() => {}
                _ => return false,
            }
            let parent = self.evaluate_at_depth(&dependency.feature, context, 1);
            if dependency.enabled == Some(false) {
                return !parent.enabled;
            }
            parent.enabled && (dependency.variants.is_empty() || dependency.variants.contains(&parent.variant.name))
        })
    }

    fn with_variant(
        &self,
        feature: &Feature,
        strategy: Option<&Strategy>,
        context: &Context,
        reason: Reason,
    ) -> Evaluation {
        // Strategy variants stick to what the strategy sticks to, unless a variant says.
        let (variants, group, inherited) = match strategy {
            Some(s) if !s.variants.is_empty() => (
                &s.variants,
                s.parameters.get("groupId").cloned().unwrap_or_else(|| feature.name.clone()),
                s.parameters.get("stickiness").map(String::as_str),
            ),
            _ => (&feature.variants, feature.name.clone(), None),
        };
        let (variant, reason) = match self.pick_variant(variants, &group, inherited, context) {
            Some((variant, variant_reason)) => (
                VariantResult {
                    name: variant.name.clone(),
                    enabled: true,
                    payload: variant.payload.clone(),
                    feature_enabled: true,
                },
                if reason == Reason::Static { variant_reason } else { reason },
            ),
            None => (VariantResult::disabled(true), reason),
        };
        Evaluation { enabled: true, variant, reason, error: None }
    }

    fn pick_variant<'v>(
        &self,
        variants: &'v [Variant],
        group: &str,
        inherited: Option<&str>,
        context: &Context,
    ) -> Option<(&'v Variant, Reason)> {
        let total: u32 = variants.iter().map(|v| v.weight).sum();
        if total == 0 {
            return None;
        }
        let overridden = variants.iter().find(|v| {
            v.overrides.iter().any(|o| context.field(&o.context_name).is_some_and(|value| o.values.contains(&value)))
        });
        if let Some(variant) = overridden {
            return Some((variant, Reason::TargetingMatch));
        }
        let stickiness = variants.first().and_then(|v| v.stickiness.as_deref()).or(inherited).unwrap_or("default");
        let id = match stickiness {
            "default" => context.default_stickiness().or_else(|| context.field("remoteAddress")),
            other => context.field(other),
        }
        .unwrap_or_else(random_id);
        let target = hash::normalized(&id, group, total, hash::VARIANT_SEED);
        let mut counter = 0;
        for variant in variants.iter().filter(|v| v.weight > 0) {
            counter += variant.weight;
            if counter >= target {
                let split = variants.iter().filter(|v| v.weight > 0).count() > 1;
                return Some((variant, if split { Reason::Split } else { Reason::Static }));
            }
        }
        None
    }

    fn strategy(&self, feature: &Feature, strategy: &Strategy, context: &Context) -> Outcome {
        let segment_constraints = strategy
            .segments
            .iter()
            .map(|id| self.segments.get(id).map(|s| s.constraints.as_slice()))
            .collect::<Option<Vec<_>>>();
        // A strategy naming a segment that does not exist never matches.
        let Some(segment_constraints) = segment_constraints else { return Outcome::No };
        let constrained = !strategy.constraints.is_empty() || !segment_constraints.is_empty();
        let all_hold =
            strategy.constraints.iter().chain(segment_constraints.into_iter().flatten()).all(|c| holds(c, context));
        if !all_hold {
            return Outcome::No;
        }
        let targeted = |yes: bool| {
            if yes {
                Outcome::Yes(if constrained { Reason::TargetingMatch } else { Reason::Static })
            } else {
                Outcome::No
            }
        };
        let parameter = |name: &str| strategy.parameters.get(name).map(String::as_str);
        let percentage = |name: &str| parameter(name).and_then(|p| p.trim().parse::<f64>().ok()).unwrap_or(0.0);
        match strategy.name.as_str() {
            "default" => targeted(true),
            "userWithId" => {
                let listed = context.field("userId").is_some_and(|user| {
                    parameter("userIds").is_some_and(|ids| ids.split(',').any(|id| id.trim() == user))
                });
                if listed { Outcome::Yes(Reason::TargetingMatch) } else { Outcome::No }
            }
            "gradualRolloutUserId" | "gradualRolloutSessionId" => {
                let field = if strategy.name == "gradualRolloutUserId" { "userId" } else { "sessionId" };
                let Some(id) = context.field(field) else { return Outcome::No };
                let group = parameter("groupId").unwrap_or_default();
                self.rollout(&id, group, percentage("percentage"))
            }
            "gradualRolloutRandom" => self.rollout(&random_id(), "random", percentage("percentage")),
            "flexibleRollout" => {
                let group = parameter("groupId").map_or_else(|| feature.name.clone(), str::to_owned);
                let rollout = percentage("rollout");
                let id = match parameter("stickiness").unwrap_or("default") {
                    "default" => context.default_stickiness(),
                    "random" => Some(random_id()),
                    field => context.field(field),
                };
                match id {
                    Some(id) => self.rollout(&id, &group, rollout),
                    None if rollout >= 100.0 => Outcome::Yes(Reason::Static),
                    None if rollout <= 0.0 => Outcome::No,
                    None if self.random_fallback && parameter("stickiness").unwrap_or("default") == "default" => {
                        self.rollout(&random_id(), &group, rollout)
                    }
                    None if self.random_fallback => Outcome::No,
                    None => Outcome::NoKey,
                }
            }
            "remoteAddress" => {
                let Some(address) = context.field("remoteAddress") else { return Outcome::No };
                let listed =
                    parameter("IPs").is_some_and(|ips| ips.split(',').any(|ip| ip_matches(ip.trim(), &address)));
                if listed { Outcome::Yes(Reason::TargetingMatch) } else { Outcome::No }
            }
            _ => Outcome::No,
        }
    }

    fn rollout(&self, id: &str, group: &str, percentage: f64) -> Outcome {
        match percentage {
            p if p >= 100.0 => Outcome::Yes(Reason::Static),
            p if hash::in_rollout(id, group, p) => Outcome::Yes(Reason::Split),
            _ => Outcome::No,
        }
    }
}

fn random_id() -> String {
    rand::random::<u32>().to_string()
}

fn ip_matches(rule: &str, address: &str) -> bool {
    if rule == address {
        return true;
    }
    match (rule.parse::<ipnet::IpNet>(), address.parse::<IpAddr>()) {
        (Ok(net), Ok(ip)) => net.contains(&ip),
        _ => false,
    }
}

/// Whether constraint `c` holds for `context`.
pub fn holds(c: &Constraint, context: &Context) -> bool {
    let value = context.field(&c.context_name);
    let result = match c.operator.as_str() {
        "IN" => value.as_ref().is_some_and(|v| c.values.contains(v)),
        "NOT_IN" => !value.as_ref().is_some_and(|v| c.values.contains(v)),
        "STR_CONTAINS" | "STR_STARTS_WITH" | "STR_ENDS_WITH" => value.is_some_and(|v| {
            let fold = |s: &str| if c.case_insensitive { s.to_lowercase() } else { s.to_owned() };
            let v = fold(&v);
            c.values.iter().map(|x| fold(x)).any(|x| match c.operator.as_str() {
                "STR_CONTAINS" => v.contains(&x),
                "STR_STARTS_WITH" => v.starts_with(&x),
                _ => v.ends_with(&x),
            })
        }),
        "NUM_EQ" | "NUM_GT" | "NUM_GTE" | "NUM_LT" | "NUM_LTE" => {
            let number = |s: Option<&str>| s.and_then(|s| s.trim().parse::<f64>().ok());
            match (number(value.as_deref()), number(c.value.as_deref())) {
                (Some(a), Some(b)) => match c.operator.as_str() {
                    "NUM_EQ" => a == b,
                    "NUM_GT" => a > b,
                    "NUM_GTE" => a >= b,
                    "NUM_LT" => a < b,
                    _ => a <= b,
                },
                _ => false,
            }
        }
        "DATE_AFTER" | "DATE_BEFORE" => {
            let date = |s: Option<&str>| s.and_then(|s| DateTime::parse_from_rfc3339(s.trim()).ok());
            match (date(value.as_deref()), date(c.value.as_deref())) {
                (Some(a), Some(b)) => {
                    if c.operator == "DATE_AFTER" {
                        a > b
                    } else {
                        a < b
                    }
                }
                _ => false,
            }
        }
        "SEMVER_EQ" | "SEMVER_GT" | "SEMVER_GTE" | "SEMVER_LT" | "SEMVER_LTE" => {
            let version = |s: Option<&str>| s.and_then(|s| semver::Version::parse(s.trim()).ok());
            match (version(value.as_deref()), version(c.value.as_deref())) {
                (Some(a), Some(b)) => {
                    let order = a.cmp_precedence(&b);
                    match c.operator.as_str() {
                        "SEMVER_EQ" => order.is_eq(),
                        "SEMVER_GT" => order.is_gt(),
                        "SEMVER_GTE" => order.is_ge(),
                        "SEMVER_LT" => order.is_lt(),
                        _ => order.is_le(),
                    }
                }
                _ => false,
            }
        }
        "REGEX" => match (value, c.value.as_deref()) {
            (Some(v), Some(pattern)) => regex::RegexBuilder::new(pattern)
                .case_insensitive(c.case_insensitive)
                .size_limit(1 << 20)
                .build()
                .is_ok_and(|re| re.is_match(&v)),
            _ => false,
        },
        "IN_CIDR" => value.is_some_and(|v| c.values.iter().any(|net| ip_matches(net.trim(), &v))),
        // An operator this version does not know never holds, inverted or not.
        _ => return false,
    };
    result != c.inverted
}
