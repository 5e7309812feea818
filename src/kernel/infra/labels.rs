//! Bounded metric labels: client-supplied values (operation names, app versions) become
//! label values only up to a fixed number of distinct values, after which they are reported
//! as `other`. A client that sends a new operation name per request cannot blow up the
//! metrics registry.
//!
//! Label values are [`Label`]s: a static string or a shared one, so recording a request's
//! metrics copies no string (every request records several label sets).

use std::{
    collections::HashSet,
    hash::{Hash, Hasher},
    sync::{Arc, Mutex},
};

use prometheus_client::encoding::{EncodeLabelValue, LabelValueEncoder};

/// A metric label value that is cheap to clone.
#[derive(Clone, Debug)]
pub enum Label {
    /// A value known at compile time (a route, `unknown`, `other`).
    Static(&'static str),
    /// A value admitted at run time (an operation name, an app version).
    Shared(Arc<str>),
}

impl Label {
    /// The value.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Static(value) => value,
            Self::Shared(value) => value,
        }
    }
}

impl PartialEq for Label {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Label {}

impl Hash for Label {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl EncodeLabelValue for Label {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.as_str(), encoder)
    }
}

/// A set of label values that admits at most `capacity` distinct values.
#[derive(Debug)]
pub struct BoundedLabels {
    capacity: usize,
    seen: Mutex<HashSet<Arc<str>>>,
}

/// Label used for values beyond the capacity.
pub const OTHER: &str = "other";

impl BoundedLabels {
    /// A set admitting `capacity` distinct values.
    pub fn new(capacity: usize) -> Self {
        Self { capacity, seen: Mutex::new(HashSet::new()) }
    }

    /// The label to record for `value`: the value itself if it is already known or there is
    /// room for it, otherwise [`OTHER`]. Values longer than 64 bytes are never admitted.
    pub fn admit(&self, value: &str) -> Label {
        if value.len() > 64 {
            return Label::Static(OTHER);
        }
        let Ok(mut seen) = self.seen.lock() else {
            return Label::Static(OTHER);
        };
        if let Some(known) = seen.get(value) {
            return Label::Shared(known.clone());
        }
        if seen.len() < self.capacity {
            let value: Arc<str> = Arc::from(value);
            seen.insert(value.clone());
            return Label::Shared(value);
        }
        Label::Static(OTHER)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_up_to_capacity_then_reports_other() {
        let labels = BoundedLabels::new(2);
        assert_eq!(labels.admit("a").as_str(), "a");
        assert_eq!(labels.admit("b").as_str(), "b");
        assert_eq!(labels.admit("c").as_str(), OTHER);
        assert_eq!(labels.admit("a").as_str(), "a");
        assert_eq!(labels.admit(&"x".repeat(65)).as_str(), OTHER);
    }

    #[test]
    fn static_and_shared_values_are_the_same_label() {
        let shared = Label::Shared(Arc::from("HomeFeed"));
        assert_eq!(shared, Label::Static("HomeFeed"));
        let hash = |label: &Label| {
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            label.hash(&mut hasher);
            hasher.finish()
        };
        assert_eq!(hash(&shared), hash(&Label::Static("HomeFeed")));
    }
}
