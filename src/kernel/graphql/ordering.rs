//! Response field order: fields come back in the order the query selected them.
//!
//! async-graphql 7.2 inserts an object's fields in the order their resolvers finish, so the
//! same query over the same data could serialise differently from one run to the next. The
//! GraphQL specification asks for selection order, and byte-stable bodies are what make
//! ETags and response caches work, so the executed response is reordered here, following the
//! operation's selection sets (fragments and aliases included).

use std::{collections::HashMap, rc::Rc};

use async_graphql::{
    Name, Positioned, Value,
    parser::types::{ExecutableDocument, FragmentDefinition, OperationDefinition, Selection, SelectionSet},
};

type Fragments = HashMap<Name, Positioned<FragmentDefinition>>;

/// The operation a request runs: the one named `name`, or the first (the only one, in a valid
/// request without a name).
pub fn selected_operation<'a>(
    document: &'a ExecutableDocument,
    name: Option<&str>,
) -> Option<&'a Positioned<OperationDefinition>> {
    let found = match name {
        Some(name) => document.operations.iter().find(|(n, _)| n.map(|n| n.as_str()) == Some(name)),
        None => document.operations.iter().next(),
    };
    found.map(|(_, operation)| operation)
}

/// Reorders `data` to follow the selected operation of `document`.
pub fn order_response(data: &mut Value, document: &ExecutableDocument, operation_name: Option<&str>) {
    if let Some(operation) = selected_operation(document, operation_name) {
        let mut plans = Plans { fragments: &document.fragments, known: HashMap::new() };
        plans.reorder(data, &[&operation.node.selection_set.node]);
    }
}

/// The plans of one response, one per distinct selection: every post of a feed shares the
/// plan of its `author` (and of its comments' authors), computed once rather than per object.
struct Plans<'a> {
    fragments: &'a Fragments,
    known: HashMap<Vec<*const SelectionSet>, Rc<Plan<'a>>>,
}

impl<'a> Plans<'a> {
    fn reorder(&mut self, value: &mut Value, sets: &[&'a SelectionSet]) {
        if !matches!(value, Value::List(_) | Value::Object(_)) {
            return;
        }
        let key: Vec<*const SelectionSet> = sets.iter().map(|set| *set as *const SelectionSet).collect();
        let plan = match self.known.get(&key) {
            Some(plan) => plan.clone(),
            None => {
                let plan = Rc::new(Plan::new(sets, self.fragments));
                self.known.insert(key, plan.clone());
                plan
            }
        };
        plan.apply(value, self);
    }
}

/// The response keys of a selection in order, with the sub-selections of each.
struct Plan<'a> {
    order: Vec<(&'a Name, Vec<&'a SelectionSet>)>,
}

impl<'a> Plan<'a> {
    fn new(sets: &[&'a SelectionSet], fragments: &'a Fragments) -> Self {
        let mut order = Vec::new();
        collect(sets, fragments, &mut order, 0);
        Self { order }
    }

    fn apply(&self, value: &mut Value, plans: &mut Plans<'a>) {
        match value {
            Value::List(items) => {
                for item in items {
                    self.apply(item, plans);
                }
            }
            Value::Object(map) => {
                // Objects whose fields all finished in selection order need no rebuild.
                let in_order = map.len() == self.order.len() && map.keys().zip(&self.order).all(|(k, (n, _))| k == *n);
                if !in_order {
                    let mut unordered = std::mem::take(map);
                    for (key, _) in &self.order {
                        if let Some(child) = unordered.shift_remove(*key) {
                            map.insert((*key).clone(), child);
                        }
                    }
                    // Anything not found in the selection (there should be nothing) keeps its place.
                    map.extend(unordered);
                }
                for (key, subsets) in &self.order {
                    if subsets.iter().any(|set| !set.items.is_empty())
                        && let Some(child) = map.get_mut(*key)
                    {
                        plans.reorder(child, subsets);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Appends the response keys of `sets` in selection order, merging the sub-selections of
/// fields that share a response key. `depth` bounds fragment expansion.
fn collect<'a>(
    sets: &[&'a SelectionSet],
    fragments: &'a Fragments,
    order: &mut Vec<(&'a Name, Vec<&'a SelectionSet>)>,
    depth: usize,
) {
    if depth > 64 {
        return;
    }
    for set in sets {
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => {
                    let key = &field.node.response_key().node;
                    let sub = &field.node.selection_set.node;
                    match order.iter_mut().find(|(k, _)| *k == key) {
                        Some((_, subsets)) => subsets.push(sub),
                        None => order.push((key, vec![sub])),
                    }
                }
                Selection::InlineFragment(fragment) => {
                    collect(&[&fragment.node.selection_set.node], fragments, order, depth + 1);
                }
                Selection::FragmentSpread(spread) => {
                    if let Some(definition) = fragments.get(&spread.node.fragment_name.node) {
                        collect(&[&definition.node.selection_set.node], fragments, order, depth + 1);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::{Value, parser::parse_query};

    use super::*;

    #[test]
    fn objects_follow_selection_order_with_aliases_and_fragments() {
        let document =
            parse_query("query Q { b: x { z y } a ...F } fragment F on Query { c ... on Query { d } }").expect("parse");
        let mut data: Value = serde_json::from_value(serde_json::json!({
            "d": 4, "c": 3, "a": 1, "b": [{ "y": 1, "z": 2 }, { "y": 3, "z": 4 }]
        }))
        .expect("value");
        order_response(&mut data, &document, Some("Q"));
        let text = serde_json::to_string(&data).expect("json");
        assert_eq!(text, r#"{"b":[{"z":2,"y":1},{"z":4,"y":3}],"a":1,"c":3,"d":4}"#);
    }
}
