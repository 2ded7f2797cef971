//! Bounded fuzzing of the parsers that read untrusted input: `.gitlab-ci.yml` through the whole
//! planner, `spec:inputs` headers and `$[[ ]]` interpolation, `rules:if` expressions (parse and
//! evaluate), and the parameter merger's bracket keys. Seeds are the spec's example cases and the expression cases; mutations flip, cut,
//! repeat and splice bytes and insert tokens the grammars care about. Any panic fails the test.
//! Each target runs `SPUR_FUZZ_SECONDS` (default 3) seconds.

use crate::ci_config::plan::{Context, plan};
use std::time::{Duration, Instant};

/// xorshift64: reproducible from the printed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn seed() -> u64 {
    let s = std::env::var("SPUR_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    eprintln!("fuzz seed {s} (set SPUR_FUZZ_SEED to repeat)");
    s | 1
}

fn budget() -> Duration {
    let secs = std::env::var("SPUR_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    Duration::from_secs(secs)
}

/// One random change to `input`.
fn mutate(rng: &mut Rng, input: &str, tokens: &[&str]) -> String {
    let mut bytes = input.as_bytes().to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(bytes.len() + 1);
        match rng.below(6) {
            0 if !bytes.is_empty() => {
                let end = (at + rng.below(16)).min(bytes.len());
                bytes.drain(at.min(end)..end);
            }
            1 => {
                let token = tokens[rng.below(tokens.len())].as_bytes();
                bytes.splice(at..at, token.iter().copied());
            }
            2 if !bytes.is_empty() => {
                let i = rng.below(bytes.len());
                bytes[i] = (rng.next() & 0x7f) as u8;
            }
            3 if !bytes.is_empty() => {
                let start = rng.below(bytes.len());
                let end = (start + rng.below(64)).min(bytes.len());
                let piece = bytes[start..end].to_vec();
                for _ in 0..1 + rng.below(3) {
                    bytes.splice(at..at, piece.iter().copied());
                }
            }
            4 => bytes.splice(at..at, b"\n  ".iter().copied()).for_each(drop),
            _ => bytes.splice(at..at, [b' ']).for_each(drop),
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

const YAML_TOKENS: &[&str] = &[
    ": ",
    "- ",
    "&a ",
    "*a",
    "<<: *a\n",
    "!reference [a, b]",
    "${X}",
    "$CI_COMMIT_REF_NAME",
    "'",
    "\"",
    "{",
    "}",
    "[",
    "]",
    "\n",
    "  ",
    "include: x.yml\n",
    "extends: .t\n",
    "rules:\n  - if: $A == \"1\"\n",
    "needs: [",
    "parallel: 3\n",
    "parallel:\n  matrix:\n    - A: [1, 2]\n",
    "when: manual\n",
    "stage: test\n",
    "script: x\n",
    "trigger: a/b\n",
    "variables:\n  A: $B\n  B: $A\n",
    "workflow:\n  rules:\n    - when: never\n",
    "? ",
    "|\n",
    ">-\n",
    "~",
    "null",
    "yes",
];

const EXPRESSION_TOKENS: &[&str] = &[
    "$A",
    "${B}",
    "==",
    "!=",
    "=~",
    "!~",
    "&&",
    "||",
    "(",
    ")",
    "/a.*b/i",
    "/",
    "\"x\"",
    "'y'",
    "null",
    " ",
    "\\",
    "$CI_PIPELINE_SOURCE",
    "/(a+)+$/",
    "[",
    "]",
    "*",
    "!",
];

fn case_configs() -> Vec<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/ci-cases");
    let mut out: Vec<String> = std::fs::read_dir(root)
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter_map(|e| std::fs::read_to_string(e.path().join(".gitlab-ci.yml")).ok())
                .collect()
        })
        .unwrap_or_default();
    out.push("a:\n  script: x\n".into());
    out
}

#[test]
fn the_planner_survives_mutated_configurations() {
    let seeds = case_configs();
    let mut rng = Rng(seed());
    let ctx = Context {
        source: "trigger".into(),
        ref_name: "main".into(),
        default_branch: "main".into(),
        project_path: "g/p".into(),
        project_id: 1,
        sha: "0".repeat(40),
        ..Context::default()
    };
    let files = vec![".gitlab-ci.yml".to_string(), "x.yml".to_string()];
    let started = Instant::now();
    let mut runs = 0u64;
    while started.elapsed() < budget() {
        let pick = rng.below(seeds.len());
        let config = mutate(&mut rng, &seeds[pick], YAML_TOKENS);
        let source = |p: &str| match p {
            ".gitlab-ci.yml" => Some(config.clone()),
            "x.yml" => Some("x:\n  script: y\n".to_string()),
            _ => None,
        };
        let _ = plan(&source, &files, &ctx);
        runs += 1;
    }
    eprintln!("planner: {runs} mutated configurations");
    assert!(runs > 0);
}

const INPUT_TOKENS: &[&str] = &[
    "$[[",
    "]]",
    "$[[ inputs.a ]]",
    "$[[ inputs.n | truncate(1,2) ]]",
    "$[[ inputs.a | expand_vars | posix_escape ]]",
    "$[[ matrix.X ]]",
    " | ",
    "inputs.",
    "spec:\n  inputs:\n",
    "---\n",
    "    type: number\n",
    "    type: array\n",
    "    type: boolean\n",
    "    default: ",
    "    options: [a, 1]\n",
    "    regex: '(a+)+$'\n",
    "\n",
    ": ",
    "- ",
    "[",
    "]",
];

/// The header and interpolation parser: mutated files with `spec:inputs`, loaded with mutated
/// arguments, directly and through `include:inputs` in the planner.
#[test]
fn inputs_and_interpolation_survive_mutation() {
    use crate::ci_config::inputs::{Origin, load};
    use crate::ci_config::yaml::{Yaml, from_json};
    let mut seeds: Vec<String> = case_configs();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/ci-cases");
    for dir in [
        "121-include-inputs/templates/scan.yml",
        "139-interpolation-functions/t.yml",
        "155-array-input-in-needs/t.yml",
    ] {
        seeds.extend(std::fs::read_to_string(root.join(dir)).ok());
    }
    let args = [
        serde_json::json!({}),
        serde_json::json!({"a": "x$A", "n": 3, "environment": "production"}),
        serde_json::json!({"a": ["$[[ inputs.a ]]"], "n": "3", "b": true}),
    ];
    let vars = vec![("A".to_string(), "$[[ inputs.a ]]".to_string())];
    let ctx = Context {
        source: "api".into(),
        ref_name: "main".into(),
        default_branch: "main".into(),
        project_path: "g/p".into(),
        project_id: 1,
        sha: "0".repeat(40),
        ..Context::default()
    };
    let mut rng = Rng(seed());
    let started = Instant::now();
    let mut runs = 0u64;
    while started.elapsed() < budget() {
        let pick = rng.below(seeds.len());
        let text = mutate(&mut rng, &seeds[pick], INPUT_TOKENS);
        let Yaml::Map(given) = from_json(&args[rng.below(args.len())]) else {
            continue;
        };
        let origin = if rng.below(2) == 0 {
            Origin::Yaml
        } else {
            Origin::Request
        };
        let masked = vec!["SECRET".to_string()];
        let _ = load(
            &text,
            &given,
            origin,
            crate::ci_config::inputs::Vars {
                values: &vars,
                masked: &masked,
            },
        );
        let main = if rng.below(2) == 0 {
            text.clone()
        } else {
            "include:\n  - local: t.yml\n    inputs: {a: x, n: 2}\n".to_string()
        };
        let source = |p: &str| match p {
            ".gitlab-ci.yml" => Some(main.clone()),
            "t.yml" => Some(text.clone()),
            _ => None,
        };
        let _ = plan(
            &source,
            &[],
            &Context {
                inputs: given,
                ..ctx.clone()
            },
        );
        runs += 1;
    }
    eprintln!("inputs: {runs} mutated files");
    assert!(runs > 0);
}

#[test]
fn expressions_survive_mutation() {
    let seeds: Vec<String> = include_str!("rules/cases.txt")
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(" | ").map(|(_, expr)| expr.to_string()))
        .collect();
    let mut rng = Rng(seed());
    let lookup = |name: &str| match name {
        "A" => Some("aaaa".to_string()),
        "B" => Some("/a+/".to_string()),
        _ => None,
    };
    let started = Instant::now();
    let mut runs = 0u64;
    while started.elapsed() < budget() {
        let pick = rng.below(seeds.len());
        let text = mutate(&mut rng, &seeds[pick], EXPRESSION_TOKENS);
        if let Ok(expr) = crate::rules::Expression::parse(&text) {
            let _ = expr.evaluate(&lookup);
        }
        runs += 1;
    }
    eprintln!("expressions: {runs} mutated expressions");
    assert!(runs > 0);
}

const FORM_TOKENS: &[&str] = &[
    "&",
    "=",
    "[",
    "]",
    "[]",
    "%5B",
    "%5D",
    "%",
    "+",
    "variables[",
    "][",
    "a[b][c]",
    "a[][k]",
    "a[][v]",
    "token=",
    "ref=",
];

#[test]
fn the_parameter_merger_survives_mutated_forms() {
    let seeds = [
        "token=t&ref=main&variables[A]=1&variables[B]=2",
        "variables[][key]=A&variables[][value]=1&variables[][key]=B&variables[][value]=2",
        "a[b][c]=1&a[b][d]=2&a[]=x",
        "inputs[n]=3&inputs[list]=[\"x\"]",
    ];
    let mut rng = Rng(seed());
    let started = Instant::now();
    let mut runs = 0u64;
    while started.elapsed() < budget() {
        let pick = rng.below(seeds.len());
        let body = mutate(&mut rng, seeds[pick], FORM_TOKENS);
        let _ = crate::http::params::merge_form(body.as_bytes());
        runs += 1;
    }
    eprintln!("parameters: {runs} mutated forms");
    assert!(runs > 0);
}

#[test]
fn the_content_range_parser_survives_mutated_headers() {
    let seeds = ["0-42", "43-1080", "bytes 5-9", "1080-1080"];
    let tokens = &[
        "-",
        " ",
        "bytes ",
        "0",
        "9",
        "18446744073709551615",
        "99999999999999999999",
        "+",
    ];
    let mut rng = Rng(seed());
    let started = Instant::now();
    let mut runs = 0u64;
    while started.elapsed() < budget() {
        let pick = rng.below(seeds.len());
        let header = mutate(&mut rng, seeds[pick], tokens);
        if let Some(start) = crate::trace::content_range_start(&header) {
            assert!(header.contains(&start.to_string()), "{header:?} gave {start}");
        }
        runs += 1;
    }
    eprintln!("content ranges: {runs} mutated headers");
    assert!(runs > 0);
}

#[test]
fn the_push_command_parser_survives_mutated_bodies() {
    let a = "a".repeat(40);
    let line = format!("{a} {a} refs/heads/main\0report-status\n");
    let body_seed = format!("{:04x}{line}0000PACK", line.len() + 4);
    let tokens = &["0000", "0004", "ffff", "\0", "\n", " ", "refs/", "shallow ", "0", "zz"];
    let mut rng = Rng(seed());
    let started = Instant::now();
    let mut runs = 0u64;
    while started.elapsed() < budget() {
        let body = mutate(&mut rng, &body_seed, tokens);
        if let Ok(Some(commands)) = crate::http::git_http::push_commands(body.as_bytes()) {
            assert!(
                commands
                    .iter()
                    .all(|c| c.name.starts_with("refs/") && c.old.len() == 40)
            );
        }
        runs += 1;
    }
    eprintln!("push commands: {runs} mutated bodies");
    assert!(runs > 0);
}
