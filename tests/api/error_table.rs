//! The README's error table against the code: it must list exactly the codes `ApiError` can answer
//! with (`CODES`, which the compiler keeps complete), each with its status.

use std::collections::BTreeSet;

use simverify::http::CODES;

/// `(code, status)` for every code the README's "### Errors" table lists. A row names one status for
/// all its codes, or one status per code, in order (`404, 405 | not_found, method_not_allowed`).
fn readme_codes() -> BTreeSet<(String, u16)> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README.md");
    let section = readme
        .split("\n### Errors\n")
        .nth(1)
        .expect("the README has an \"### Errors\" section");
    let section = section.split("\n#").next().unwrap_or(section);
    let mut listed = BTreeSet::new();
    for row in section.lines().filter(|l| l.starts_with('|')) {
        let cells: Vec<&str> = row.trim_matches('|').split('|').map(str::trim).collect();
        let Ok(statuses) = cells[0]
            .split(',')
            .map(|s| s.trim().parse::<u16>())
            .collect::<Result<Vec<u16>, _>>()
        else {
            continue; // The header and separator rows.
        };
        // Codes are the backticked snake_case words; other backticked text (headers, flags) is not.
        let codes: Vec<&str> = cells[1]
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|w| {
                !w.is_empty()
                    && w.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            })
            .collect();
        assert!(
            statuses.len() == 1 || statuses.len() == codes.len(),
            "README row {row:?}: give one status, or one per code"
        );
        for (i, code) in codes.iter().enumerate() {
            let status = statuses[if statuses.len() == 1 { 0 } else { i }];
            assert!(listed.insert((code.to_string(), status)), "README lists {code} twice");
        }
    }
    listed
}

#[test]
fn the_readme_error_table_lists_exactly_the_codes_and_statuses_of_the_code() {
    let readme = readme_codes();
    let code: BTreeSet<(String, u16)> = CODES.iter().map(|(c, s, _)| (c.to_string(), *s)).collect();

    let missing: Vec<_> = code.difference(&readme).collect();
    let extra: Vec<_> = readme.difference(&code).collect();

    assert!(
        missing.is_empty() && extra.is_empty(),
        "README.md \"### Errors\" is out of step with src/http/problem/error.rs: missing {missing:?}, not in the code {extra:?}"
    );
}

#[test]
fn every_code_has_a_title_and_an_error_status() {
    for (code, status, title) in CODES {
        assert!((400..600).contains(status), "{code}: {status}");
        assert!(!title.is_empty(), "{code} has no title");
    }
}
