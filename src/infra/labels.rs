//! Bounded metric labels: client-supplied values (operation names, app versions) become
//! label values only up to a fixed number of distinct values, after which they are reported
//! as `other`. A client that sends a new operation name per request cannot blow up the
//! metrics registry.

use std::{collections::HashSet, sync::Mutex};

/// A set of label values that admits at most `capacity` distinct values.
#[derive(Debug)]
pub struct BoundedLabels {
    capacity: usize,
    seen: Mutex<HashSet<String>>,
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
    pub fn admit(&self, value: &str) -> String {
        if value.len() > 64 {
            return OTHER.to_owned();
        }
        let Ok(mut seen) = self.seen.lock() else {
            return OTHER.to_owned();
        };
        if seen.contains(value) {
            return value.to_owned();
        }
        if seen.len() < self.capacity {
            seen.insert(value.to_owned());
            return value.to_owned();
        }
        OTHER.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_up_to_capacity_then_reports_other() {
        let labels = BoundedLabels::new(2);
        assert_eq!(labels.admit("a"), "a");
        assert_eq!(labels.admit("b"), "b");
        assert_eq!(labels.admit("c"), OTHER);
        assert_eq!(labels.admit("a"), "a");
        assert_eq!(labels.admit(&"x".repeat(65)), OTHER);
    }
}
