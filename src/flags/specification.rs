//! Unleash's client specification (npm `@unleash/client-specification`) run against the
//! evaluator: every enablement and variant vector of the files the evaluator covers.
//! `BFF_UNLEASH_SPEC_DIR` names the package's `specifications/` folder (`.ci/run` installs it
//! under `tests/flags/node_modules`); the test fails without it rather than pass unseen.

#![cfg(test)]

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{
    definition::{Feature, Segment},
    evaluate::{Context, Rules},
};

#[derive(Deserialize)]
struct SpecFile {
    name: String,
    state: Option<State>,
    #[serde(default)]
    tests: Vec<EnabledTest>,
    #[serde(default, rename = "variantTests")]
    variant_tests: Vec<VariantTest>,
}

#[derive(Deserialize)]
struct State {
    #[serde(default)]
    features: Vec<Feature>,
    #[serde(default)]
    segments: Vec<Segment>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EnabledTest {
    description: String,
    context: Context,
    toggle_name: String,
    expected_result: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VariantTest {
    description: String,
    context: Context,
    toggle_name: String,
    expected_result: serde_json::Value,
}

/// Files of the specification that exercise randomness only, or the Unleash server's delta
/// API (not an evaluation).
const SKIPPED: &[&str] = &["19-delta-api-hydration.json", "20-delta-api-events.json"];

#[test]
#[ignore = "needs BFF_UNLEASH_SPEC_DIR (npm @unleash/client-specification); .ci/run sets it"]
fn unleash_client_specification() {
    let dir = std::env::var("BFF_UNLEASH_SPEC_DIR").expect("BFF_UNLEASH_SPEC_DIR must name the specifications/ folder");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("the specification folder")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json") && !p.ends_with("index.json"))
        .collect();
    files.sort();
    assert!(files.len() >= 18, "expected the specification's files in {dir}");
    let (mut checked, mut failures) = (0, Vec::new());
    for path in files {
        let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        if SKIPPED.contains(&file_name.as_str()) {
            continue;
        }
        let spec: SpecFile = serde_json::from_str(&std::fs::read_to_string(&path).expect("read"))
            .unwrap_or_else(|err| panic!("{file_name}: {err}"));
        let state = spec.state.unwrap_or(State { features: Vec::new(), segments: Vec::new() });
        let features: BTreeMap<String, Feature> = state.features.into_iter().map(|f| (f.name.clone(), f)).collect();
        let segments: BTreeMap<i64, Segment> = state.segments.into_iter().map(|s| (s.id, s)).collect();
        let rules = Rules::unleash(&features, &segments);
        for test in &spec.tests {
            checked += 1;
            let got = rules.evaluate(&test.toggle_name, &test.context).enabled;
            if got != test.expected_result {
                failures.push(format!(
                    "{} / {}: expected {}, got {got}",
                    spec.name, test.description, test.expected_result
                ));
            }
        }
        for test in &spec.variant_tests {
            checked += 1;
            let variant = rules.evaluate(&test.toggle_name, &test.context).variant;
            let mut got = serde_json::to_value(&variant).expect("json");
            let expected = &test.expected_result;
            // Older vectors do not state `feature_enabled`.
            if expected.get("feature_enabled").is_none()
                && let Some(map) = got.as_object_mut()
            {
                map.remove("feature_enabled");
            }
            if &got != expected {
                failures.push(format!("{} / {}: expected {expected}, got {got}", spec.name, test.description));
            }
        }
    }
    assert!(failures.is_empty(), "{} of {checked} vectors failed:\n{}", failures.len(), failures.join("\n"));
    assert!(checked > 200, "only {checked} vectors were checked");
}
