//! The Grafana dashboard cannot drift from the server: every metric name its queries (panels and
//! template variables) use must be exported by a live server after a little traffic.

use std::collections::BTreeSet;

use crate::common::traffic::exported_names;
use crate::common::{repo_path, Server};
use serde_json::Value;

/// PromQL words that are not metric names: aggregations, set operators and modifiers.
const KEYWORDS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "count",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "count_values",
    "group",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "inf",
    "nan",
];
/// Words followed by a parenthesised list of label names.
const LABEL_LISTS: &[&str] = &["by", "without", "on", "ignoring", "group_left", "group_right"];

/// Every query string in the dashboard: panel targets' `expr` and template variables' queries.
fn queries(dashboard: &Value) -> Vec<String> {
    let mut found = Vec::new();
    collect(dashboard, &mut found);
    found
}

fn collect(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("expr", Value::String(q)) | ("definition", Value::String(q)) => found.push(q.clone()),
                    ("query", Value::String(q)) => found.push(q.clone()),
                    _ => collect(v, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect(v, found)),
        _ => {}
    }
}

/// Drops what holds no metric name: quoted strings, label matchers `{...}` and ranges `[...]`;
/// `label_values(metric, label)` keeps only its metric.
fn strip(query: &str) -> String {
    let mut out = String::new();
    let mut closing = None;
    for c in query.chars() {
        match closing {
            Some(end) if c == end => closing = None,
            Some(_) => {}
            None => match c {
                '{' => closing = Some('}'),
                '[' => closing = Some(']'),
                '"' => closing = Some('"'),
                _ => out.push(c),
            },
        }
    }
    // label_values(m, l) -> m ; label_values(l) names no metric.
    while let Some(at) = out.find("label_values(") {
        let args_start = at + "label_values(".len();
        let args_end = args_start + out[args_start..].find(')').expect("label_values(...) closes");
        let args = &out[args_start..args_end];
        let metric = if args.contains(',') {
            args.split(',').next().unwrap_or_default().trim().to_string()
        } else {
            String::new()
        };
        out.replace_range(at..=args_end, &metric);
    }
    out
}

/// The metric names `query` reads.
fn metric_names(query: &str) -> BTreeSet<String> {
    let text = strip(query);
    let chars: Vec<char> = text.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    let mut skip_list = false;
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let next = chars[i..].iter().find(|c| !c.is_whitespace());
            if LABEL_LISTS.contains(&word.as_str()) {
                skip_list = true;
            } else if next != Some(&'(') && !KEYWORDS.contains(&word.as_str()) {
                names.insert(word);
            }
        } else if c == '(' && skip_list {
            // The label names of `by (...)` and friends.
            i += chars[i..].iter().position(|&c| c == ')').expect("label list closes");
            skip_list = false;
        } else if c.is_ascii_digit() || c == '.' {
            // A number (0.99, 1e3): not a name.
            while i + 1 < chars.len() && (chars[i + 1].is_ascii_alphanumeric() || chars[i + 1] == '.') {
                i += 1;
            }
        }
        i += 1;
    }
    names
}

#[test]
fn the_extractor_finds_metrics_and_skips_functions_labels_and_keywords() {
    let q = r#"(sum by (model) (rate(a_sum{model=~"$model"}[$__rate_interval])) / sum by (model) (rate(a_count[5m]))) / on (model) max by (model) (limit{x="y{"}) * 1e3 + histogram_quantile(0.99, sum without (le) (b_bucket)) or c offset 5m"#;

    let names = metric_names(q);

    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["a_count", "a_sum", "b_bucket", "c", "limit"]
    );
    assert_eq!(
        metric_names("label_values(simverify_model_info, model)")
            .into_iter()
            .collect::<Vec<_>>(),
        ["simverify_model_info"]
    );
}

#[tokio::test]
async fn every_metric_the_dashboard_queries_is_exported() {
    let path = repo_path("deploy/grafana/dashboards/simverify.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("the dashboard is there"))
        .expect("the dashboard is JSON");
    let wanted: BTreeSet<String> = queries(&dashboard).iter().flat_map(|q| metric_names(q)).collect();
    let server = Server::start(&[]).await;

    let scrape = server.scrape_after_traffic().await;
    let exported = exported_names(&scrape);

    println!("the dashboard queries {} metrics: {wanted:?}", wanted.len());
    let missing: Vec<&String> = wanted.difference(&exported).collect();
    assert!(
        missing.is_empty(),
        "{} queries metrics the server does not export: {missing:?}\nexported: {exported:?}",
        path.display()
    );
    // Nothing is enrolled, yet the catalogue panel reads 0 for every model, not "No data".
    for model in ["mnist", "product"] {
        let zero = format!("simverify_enrolled_images{{model=\"{model}\"}} 0");
        assert!(scrape.lines().any(|line| line == zero), "{zero} in\n{scrape}");
    }
    // A dashboard without queries would pass vacuously.
    assert!(wanted.len() >= 10, "{wanted:?}");
}
