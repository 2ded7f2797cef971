//! `spec:inputs` (GitLab 15.11+): a file's header declares typed inputs; `include:inputs`,
//! `trigger:inputs` or the pipeline's own inputs give values; `$[[ inputs.NAME | fn ]]` blocks in
//! the configuration document's text are replaced before it is parsed (GitLab's text
//! interpolation: a string goes in as written, anything else as JSON). The checks and their
//! texts follow GitLab's `Header::Input`, `Interpolation::Inputs` and `Interpolation::Block`.

use super::yaml::{self, LoadError, Mapping, Yaml};
use regex::Regex;
use std::collections::HashMap;
use std::sync::LazyLock;

/// GitLab's limits: distinct blocks per file, functions per block, bytes per access path,
/// options per input.
const MAX_BLOCKS: usize = 10_000;
const MAX_FUNCTIONS: usize = 3;
const MAX_ACCESS_BYTES: usize = 1024;
const MAX_OPTIONS: usize = 50;

/// The type of an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Text (the default).
    String,
    /// An integer or a float.
    Number,
    /// `true` or `false`.
    Boolean,
    /// A list of anything.
    Array,
}

impl Kind {
    /// GitLab's name for the type.
    pub fn name(self) -> &'static str {
        match self {
            Kind::String => "string",
            Kind::Number => "number",
            Kind::Boolean => "boolean",
            Kind::Array => "array",
        }
    }

    /// An article and the name, as GitLab's messages put it.
    fn with_article(self) -> &'static str {
        match self {
            Kind::String => "a string",
            Kind::Number => "a number",
            Kind::Boolean => "a boolean",
            Kind::Array => "an array",
        }
    }

    fn admits(self, value: &Yaml) -> bool {
        matches!(
            (self, value),
            (Kind::String, Yaml::Str(_))
                | (Kind::Number, Yaml::Int(_) | Yaml::Float(_))
                | (Kind::Boolean, Yaml::Bool(_))
                | (Kind::Array, Yaml::Seq(_))
        )
    }
}

/// One declared input.
#[derive(Debug, Clone, PartialEq)]
pub struct InputSpec {
    /// Its name.
    pub name: String,
    /// Its type.
    pub kind: Kind,
    /// Its default; without one the input is required.
    pub default: Option<Yaml>,
    /// What it is for.
    pub description: Option<String>,
    /// The values it may take (strings and numbers).
    pub options: Option<Vec<Yaml>>,
    /// A pattern a string value must match.
    pub regex: Option<String>,
}

/// Why a file could not be loaded with its inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputsError {
    /// The text is not valid YAML (or too big).
    Load(LoadError),
    /// A header, input or interpolation error: GitLab's first three messages, joined.
    Inputs(String),
}

/// What `expand_vars` sees: the variables' values as defined (GitLab expands one level) and
/// the names of masked ones, which it refuses to expand.
#[derive(Debug, Clone, Copy, Default)]
pub struct Vars<'a> {
    /// Name and unexpanded value, later entries winning.
    pub values: &'a [(String, String)],
    /// Masked variables' names.
    pub masked: &'a [String],
}

/// Where input values come from: YAML (`include:inputs`, `trigger:inputs`) keeps its types;
/// an HTTP request's text values are read as the declared type (`"3"` for a number input).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// From a configuration file.
    Yaml,
    /// From an API call or a form.
    Request,
}

/// Loads a configuration file with `args` for its inputs: a file with a header has its inputs
/// checked and its blocks interpolated; a file without one takes no inputs and stays as written.
/// `vars` are what `expand_vars` expands.
pub fn load(text: &str, args: &Mapping, origin: Origin, vars: Vars<'_>) -> Result<Mapping, InputsError> {
    let (header, content) = yaml::split(text).map_err(InputsError::Load)?;
    let Some(header) = header else {
        if !args.is_empty() {
            return Err(InputsError::Inputs(
                "Given inputs not defined in the `spec` section of the included configuration file".into(),
            ));
        }
        return yaml::parse_root(content).map_err(InputsError::Load);
    };
    let specs = specs(&header).map_err(joined)?;
    let values = resolve(&specs, args, origin).map_err(joined)?;
    let interpolated = interpolate(content, &values, vars).map_err(|e| joined(vec![e]))?;
    yaml::parse_root(&interpolated).map_err(InputsError::Load)
}

fn joined(errors: Vec<String>) -> InputsError {
    InputsError::Inputs(errors.into_iter().take(3).collect::<Vec<_>>().join(", "))
}

/// The inputs a file declares (for forms): none without a header.
pub fn declared(text: &str) -> Result<Vec<InputSpec>, String> {
    match yaml::split(text) {
        Ok((Some(header), _)) => specs(&header).map_err(|e| e.join(", ")),
        Ok((None, _)) => Ok(Vec::new()),
        Err(e) => Err(e.to_string()),
    }
}

/// Reads and checks the header (`Header::Root`, `Spec` and `Input` entries).
pub fn specs(header: &Mapping) -> Result<Vec<InputSpec>, Vec<String>> {
    let mut errors = Vec::new();
    let unknown = |m: &Mapping, allowed: &[&str]| -> Vec<String> {
        m.iter()
            .filter(|(k, _)| !allowed.contains(&k.as_str()))
            .map(|(k, _)| k.clone())
            .collect()
    };
    let extra = unknown(header, &["spec"]);
    if !extra.is_empty() {
        errors.push(format!("header config contains unknown keys: {}", extra.join(", ")));
    }
    let spec = match header.get("spec") {
        Some(Yaml::Map(spec)) => spec.clone(),
        Some(Yaml::Null) | None => Mapping::default(),
        Some(_) => return Err(vec!["header:spec config should be a hash".into()]),
    };
    let extra = unknown(&spec, &["inputs"]);
    if !extra.is_empty() {
        errors.push(format!(
            "header:spec config contains unknown keys: {}",
            extra.join(", ")
        ));
    }
    let inputs = match spec.get("inputs") {
        Some(Yaml::Map(inputs)) => inputs.clone(),
        Some(Yaml::Null) | None => Mapping::default(),
        Some(_) => return Err(vec!["header:spec:inputs config should be a hash".into()]),
    };
    let mut out = Vec::new();
    for (name, value) in inputs.iter() {
        let at = format!("header:spec:inputs:{name}");
        let entry = match value {
            Yaml::Null => Mapping::default(),
            Yaml::Map(m) => m.clone(),
            _ => {
                errors.push(format!("{at} config should be a hash"));
                continue;
            }
        };
        let extra = unknown(&entry, &["default", "description", "options", "regex", "type"]);
        if !extra.is_empty() {
            errors.push(format!("{at} config contains unknown keys: {}", extra.join(", ")));
        }
        let kind = match entry.get("type") {
            None | Some(Yaml::Null) => Kind::String,
            Some(Yaml::Str(t)) if t == "string" => Kind::String,
            Some(Yaml::Str(t)) if t == "number" => Kind::Number,
            Some(Yaml::Str(t)) if t == "boolean" => Kind::Boolean,
            Some(Yaml::Str(t)) if t == "array" => Kind::Array,
            Some(other) => {
                let shown = super::variables::scalar_text(other).unwrap_or_default();
                errors.push(format!("{at} input type unknown value: {shown}"));
                continue;
            }
        };
        let description = match entry.get("description") {
            None | Some(Yaml::Null) => None,
            Some(Yaml::Seq(_) | Yaml::Map(_) | Yaml::Tagged(..)) => {
                errors.push(format!("{at} input description must be an alphanumeric string"));
                None
            }
            Some(other) => super::variables::scalar_text(other),
        };
        let options = match entry.get("options") {
            None | Some(Yaml::Null) => None,
            Some(Yaml::Seq(items)) => {
                if items.len() > MAX_OPTIONS {
                    errors.push(format!("{at} config cannot define more than {MAX_OPTIONS} options"));
                }
                if items.contains(&Yaml::Null) {
                    errors.push(format!("{at} config options array cannot contain null values"));
                }
                Some(items.clone())
            }
            Some(_) => {
                errors.push(format!("{at} input options should be an array"));
                None
            }
        };
        let regex = match entry.get("regex") {
            None | Some(Yaml::Null) => None,
            Some(Yaml::Str(r)) => Some(r.clone()),
            Some(_) => {
                errors.push(format!("{at} input regex should be a string"));
                None
            }
        };
        out.push(InputSpec {
            name: name.clone(),
            kind,
            default: entry.get("default").cloned(),
            description,
            options,
            regex,
        });
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

/// Checks `args` against the declared inputs and gives every input its value
/// (`Interpolation::Inputs` and the `*Input` classes).
pub fn resolve(specs: &[InputSpec], args: &Mapping, origin: Origin) -> Result<HashMap<String, Yaml>, Vec<String>> {
    let mut errors = Vec::new();
    let unknown: Vec<&str> = args
        .iter()
        .filter(|(k, _)| !specs.iter().any(|s| &s.name == *k))
        .map(|(k, _)| k.as_str())
        .collect();
    if !unknown.is_empty() {
        errors.push(format!("unknown input arguments: {}", unknown.join(", ")));
    }
    let mut values = HashMap::new();
    for spec in specs {
        let given = match args.get(&spec.name) {
            None | Some(Yaml::Null) => None,
            Some(v) if origin == Origin::Request => Some(coerce(spec.kind, v)),
            Some(v) => Some(v.clone()),
        };
        let own = |message: String| format!("`{}` input: {message}", spec.name);
        let before = errors.len();
        match (&given, &spec.default) {
            (None, None) => {
                errors.push(own("required value has not been provided".into()));
                continue;
            }
            (_, Some(default)) => check(spec, default, true, &mut |m| errors.push(own(m))),
            _ => {}
        }
        if let Some(value) = &given {
            check(spec, value, false, &mut |m| errors.push(own(m)));
        }
        if errors.len() == before
            && let Some(value) = given.or_else(|| spec.default.clone())
        {
            values.insert(spec.name.clone(), value);
        }
    }
    if errors.is_empty() { Ok(values) } else { Err(errors) }
}

/// A request's text value read as the declared type; left as text when it does not parse (the
/// type check then reports it).
fn coerce(kind: Kind, value: &Yaml) -> Yaml {
    let Yaml::Str(text) = value else { return value.clone() };
    let parsed = match kind {
        Kind::String => None,
        Kind::Number => text.trim().parse::<i64>().map(Yaml::Int).ok().or_else(|| {
            text.trim()
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map(Yaml::Float)
        }),
        Kind::Boolean => match text.trim() {
            "true" => Some(Yaml::Bool(true)),
            "false" => Some(Yaml::Bool(false)),
            _ => None,
        },
        Kind::Array => serde_json::from_str::<serde_json::Value>(text)
            .ok()
            .filter(serde_json::Value::is_array)
            .map(|v| yaml::from_json(&v)),
    };
    parsed.unwrap_or_else(|| value.clone())
}

/// Type, options and pattern checks of one value (`run_validations`).
fn check(spec: &InputSpec, value: &Yaml, default: bool, error: &mut dyn FnMut(String)) {
    let which = if default { "default" } else { "provided" };
    if !spec.kind.admits(value) {
        error(format!("{which} value is not {}", spec.kind.with_article()));
    }
    if let Some(options) = &spec.options {
        match spec.kind {
            Kind::String | Kind::Number if !options.iter().any(|o| same(o, value)) => {
                let shown = super::variables::scalar_text(value).unwrap_or_default();
                let list = if spec.kind == Kind::String {
                    "allowed options"
                } else {
                    "the allowed options"
                };
                error(format!(
                    "`{shown}` cannot be used because it is not in the list of {list}"
                ));
            }
            Kind::String | Kind::Number => {}
            _ => error("Options can only be used with string and number inputs".into()),
        }
    }
    if let Some(pattern) = &spec.regex {
        match (spec.kind, value) {
            (Kind::String, Yaml::Str(text)) => match re2_like(pattern) {
                Ok(re) if re.is_match(text.as_bytes()) => {}
                Ok(_) => error(format!("{which} value does not match required RegEx pattern")),
                Err(_) => error("invalid regular expression".into()),
            },
            (Kind::String, _) => {}
            _ => error("RegEx validation can only be used with string inputs".into()),
        }
    }
}

/// A `regex:` as GitLab's `UntrustedRegexp` (RE2) reads it: `\w`, `\d`, `\s` and `\b` are
/// ASCII, so common patterns stay small. Compiled once per pattern and thread.
fn re2_like(pattern: &str) -> Result<std::rc::Rc<regex::bytes::Regex>, regex::Error> {
    type Compiled = HashMap<String, std::rc::Rc<regex::bytes::Regex>>;
    thread_local! {
        static COMPILED: std::cell::RefCell<Compiled> = std::cell::RefCell::new(Compiled::new());
    }
    if let Some(re) = COMPILED.with(|c| c.borrow().get(pattern).cloned()) {
        return Ok(re);
    }
    let re = std::rc::Rc::new(
        regex::bytes::RegexBuilder::new(pattern)
            .unicode(false)
            .size_limit(1 << 20)
            .build()?,
    );
    COMPILED.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= 1024 {
            c.clear();
        }
        if pattern.len() <= 1024 {
            c.insert(pattern.to_string(), re.clone());
        }
    });
    Ok(re)
}

/// Ruby's `==` between an option and a value (`1 == 1.0`).
fn same(a: &Yaml, b: &Yaml) -> bool {
    match (a, b) {
        (Yaml::Int(x), Yaml::Float(y)) | (Yaml::Float(y), Yaml::Int(x)) => (*x as f64) == *y,
        _ => a == b,
    }
}

/// The next block at or after `from`: (start, end, data). GitLab's pattern
/// `\$\[\[\s*(\S.*?\S)\s*\]\]`, scanned by hand: the data starts and ends with a non-space,
/// has at least two characters, stays on one line, and ends at the first `]]` that allows that.
fn next_block(content: &str, from: usize) -> Option<(usize, usize, &str)> {
    let mut at = from;
    while let Some(found) = content[at..].find("$[[") {
        let start = at + found;
        let after = start + 3;
        let data_start = after + content[after..].len() - content[after..].trim_start().len();
        let line_end = content[data_start..]
            .find('\n')
            .map_or(content.len(), |i| data_start + i);
        let mut search = data_start;
        while let Some(close) = content[search..line_end].find("]]") {
            let close = search + close;
            let data = content[data_start..close].trim_end();
            if data.chars().nth(1).is_some() {
                return Some((start, close + 2, data));
            }
            search = close + 1;
        }
        // Nothing on this line closes a block from here, so nothing later on it can: any later
        // start has less room. Skipping the line keeps the scan linear.
        at = line_end.max(start + 1);
    }
    None
}

/// Replaces every block in `content` (`TextTemplate`): the first invalid block stops it.
pub fn interpolate(content: &str, values: &HashMap<String, Yaml>, vars: Vars<'_>) -> Result<String, String> {
    if !content.contains("$[[") {
        return Ok(content.to_string());
    }
    let mut evaluated: HashMap<&str, Option<String>> = HashMap::new();
    let mut out = String::with_capacity(content.len());
    let mut last = 0;
    while let Some((start, end, data)) = next_block(content, last) {
        let whole = &content[start..end];
        let text = match evaluated.get(whole) {
            Some(Some(text)) => text.as_str(),
            Some(None) => whole,
            None => {
                if evaluated.len() >= MAX_BLOCKS {
                    return Err("too many interpolation blocks".into());
                }
                let value = evaluate(data, values, vars)?;
                evaluated.insert(whole, value);
                evaluated.get(whole).and_then(|v| v.as_deref()).unwrap_or(whole)
            }
        };
        out.push_str(&content[last..start]);
        out.push_str(text);
        if out.len() > yaml::MAX_YAML_BYTES {
            return Err("config too large".into());
        }
        last = end;
    }
    out.push_str(&content[last..]);
    Ok(out)
}

/// One block: `access | fn | fn`; `None` for a `matrix.` block, which stays for `needs`.
fn evaluate(data: &str, values: &HashMap<String, Yaml>, vars: Vars<'_>) -> Result<Option<String>, String> {
    // Ruby's `split('|')`: trailing empty fields are dropped, inner ones kept.
    let mut parts: Vec<&str> = data.split('|').map(str::trim).collect();
    while parts.len() > 1 && parts.last().is_some_and(|p| p.is_empty()) {
        parts.pop();
    }
    let access = parts.first().copied().unwrap_or_default();
    let functions: Vec<&str> = parts.iter().skip(1).copied().collect();
    if access.split('.').next() == Some("matrix") {
        return Ok(None);
    }
    let objects: Vec<&str> = access.splitn(5, '.').collect();
    if objects.len() <= 1 {
        return Err("invalid interpolation access pattern".into());
    }
    if access.len() > MAX_ACCESS_BYTES {
        return Err("maximum interpolation expression size exceeded".into());
    }
    if objects[0] != "inputs" {
        return Err(format!("unknown interpolation key: `{}`", objects[0]));
    }
    let Some(mut value) = values.get(objects[1]).cloned() else {
        return Err(format!("unknown interpolation key: `{}`", objects[1]));
    };
    if let Some(more) = objects.get(2) {
        return Err(format!("unknown interpolation key: `{more}`"));
    }
    if functions.len() > MAX_FUNCTIONS {
        return Err("too many functions in interpolation block".into());
    }
    let stack: Vec<Function> = functions.iter().map(|f| Function::parse(f)).collect::<Result<_, _>>()?;
    for function in stack {
        value = function.apply(value, vars)?;
    }
    Ok(Some(match value {
        Yaml::Str(s) => s,
        other => yaml::to_json(&other).to_string(),
    }))
}

/// The functions a block may apply.
enum Function {
    ExpandVars,
    Truncate(usize, usize),
    PosixEscape,
}

static TRUNCATE: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"^truncate\(\s*(\d+)\s*,\s*(\d+)\s*\)?$").ok());

impl Function {
    fn parse(text: &str) -> Result<Function, String> {
        if text == "expand_vars" {
            return Ok(Function::ExpandVars);
        }
        if text == "posix_escape" {
            return Ok(Function::PosixEscape);
        }
        if let Some(c) = TRUNCATE.as_ref().and_then(|re| re.captures(text))
            && let (Some(offset), Some(length)) = (c.get(1), c.get(2))
        {
            // Ruby's integers have no ceiling; a number past usize is as good as infinite.
            let number = |m: regex::Match| m.as_str().parse::<usize>().unwrap_or(usize::MAX);
            return Ok(Function::Truncate(number(offset), number(length)));
        }
        Err(format!(
            "no function matching `{text}`: check that the function name, arguments, and types are correct"
        ))
    }

    fn name(&self) -> &'static str {
        match self {
            Function::ExpandVars => "expand_vars",
            Function::Truncate(..) => "truncate",
            Function::PosixEscape => "posix_escape",
        }
    }

    fn apply(&self, value: Yaml, vars: Vars<'_>) -> Result<Yaml, String> {
        let Yaml::Str(text) = value else {
            return Err(format!(
                "error in `{0}` function: invalid input type: {0} can only be used with string inputs",
                self.name()
            ));
        };
        Ok(Yaml::Str(match self {
            Function::ExpandVars => expand_existing(&text, vars)
                .map_err(|e| format!("error in `expand_vars` function: variable expansion error: {e}"))?,
            Function::Truncate(offset, length) => text.chars().skip(*offset).take(*length).collect(),
            Function::PosixEscape => posix_escape(&text),
        }))
    }
}

static VARIABLE: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"\$([A-Za-z0-9_]+)|\$\{([A-Za-z0-9_]+)\}|%([A-Za-z0-9_]+)%").ok());

/// `ExpandVariables.expand_existing(fail_on_masked: true)`: `$NAME`, `${NAME}` and `%NAME%`
/// of known variables are replaced by their values as defined (one level); unknown ones stay
/// as written; a masked one is an error. The result is bounded like a configuration file.
fn expand_existing(text: &str, vars: Vars<'_>) -> Result<String, String> {
    let Some(re) = VARIABLE.as_ref() else {
        return Ok(text.to_string());
    };
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for c in re.captures_iter(text) {
        let Some(whole) = c.get(0) else { continue };
        let name = c
            .get(1)
            .or_else(|| c.get(2))
            .or_else(|| c.get(3))
            .map_or("", |m| m.as_str());
        out.push_str(&text[last..whole.start()]);
        match vars.values.iter().rev().find(|(k, _)| k == name) {
            Some(_) if vars.masked.iter().any(|m| m == name) => {
                return Err("masked variables cannot be expanded".into());
            }
            Some((_, value)) => out.push_str(value),
            None => out.push_str(whole.as_str()),
        }
        if out.len() > yaml::MAX_YAML_BYTES {
            return Err("config too large".into());
        }
        last = whole.end();
    }
    out.push_str(&text[last..]);
    Ok(out)
}

/// Ruby's `Shellwords.escape`: a word the POSIX shell reads back as `text`.
fn posix_escape(text: &str) -> String {
    if text.is_empty() {
        return "''".into();
    }
    let mut out = String::with_capacity(text.len() * 2);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("'\n'"),
            c if c.is_ascii_alphanumeric() || "_-.,:+/@".contains(c) => out.push(c),
            c => {
                out.push('\\');
                out.push(c);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(json: serde_json::Value) -> Mapping {
        match yaml::from_json(&json) {
            Yaml::Map(m) => m,
            _ => Mapping::default(),
        }
    }

    fn run(text: &str, given: serde_json::Value, origin: Origin) -> Result<serde_json::Value, String> {
        let values = [
            ("A".to_string(), "a-value".to_string()),
            ("NESTED".to_string(), "$A".to_string()),
            ("SECRET".to_string(), "hunter2-hunter2".to_string()),
        ];
        let vars = Vars {
            values: &values,
            masked: &["SECRET".to_string()],
        };
        load(text, &args(given), origin, vars)
            .map(|m| yaml::to_json(&Yaml::Map(m)))
            .map_err(|e| match e {
                InputsError::Load(e) => e.to_string(),
                InputsError::Inputs(m) => m,
            })
    }

    #[test]
    fn header_checks_have_gitlabs_texts() {
        let cases = [
            (
                "spec:\n  inputs:\n    a:\n      typo: 1\n",
                "header:spec:inputs:a config contains unknown keys: typo",
            ),
            ("spec:\n  inputs: [a]\n", "header:spec:inputs config should be a hash"),
            (
                "spec:\n  inputs: {}\n  other: 1\n",
                "header:spec config contains unknown keys: other",
            ),
            (
                "spec:\n  inputs:\n    a:\n      options: x\n",
                "header:spec:inputs:a input options should be an array",
            ),
            (
                "spec:\n  inputs:\n    a:\n      options: [x, null]\n",
                "options array cannot contain null values",
            ),
            (
                "spec:\n  inputs:\n    a:\n      regex: [x]\n",
                "header:spec:inputs:a input regex should be a string",
            ),
        ];
        for (header, want) in cases {
            let text = format!("{header}---\njob:\n  script: x\n");
            let got = run(&text, serde_json::json!({}), Origin::Yaml).unwrap_err();
            assert!(got.contains(want), "{header:?}: {got}");
        }
        let many: Vec<String> = (0..51).map(|i| i.to_string()).collect();
        let text = format!(
            "spec:\n  inputs:\n    a:\n      options: [{}]\n---\nj: {{script: x}}\n",
            many.join(", ")
        );
        assert!(
            run(&text, serde_json::json!({"a": "1"}), Origin::Yaml)
                .unwrap_err()
                .contains("more than 50 options")
        );
    }

    #[test]
    fn values_are_checked_per_type() {
        let text = "spec:\n  inputs:\n    n:\n      type: number\n      options: [1, 2]\n    b:\n      type: boolean\n      default: true\n      options: [true]\n---\nj: {script: x}\n";
        let got = run(text, serde_json::json!({"n": 3}), Origin::Yaml).unwrap_err();
        assert_eq!(
            got,
            "`n` input: `3` cannot be used because it is not in the list of the allowed options, `b` input: Options can only be used with string and number inputs"
        );
        let text =
            "spec:\n  inputs:\n    f:\n      type: array\n      regex: x\n      default: []\n---\nj: {script: x}\n";
        assert_eq!(
            run(text, serde_json::json!({}), Origin::Yaml).unwrap_err(),
            "`f` input: RegEx validation can only be used with string inputs"
        );
        let text = "spec:\n  inputs:\n    s:\n      regex: '('\n---\nj: {script: x}\n";
        assert_eq!(
            run(text, serde_json::json!({"s": "x"}), Origin::Yaml).unwrap_err(),
            "`s` input: invalid regular expression"
        );
    }

    #[test]
    fn request_text_is_read_as_the_declared_type_and_yaml_is_not() {
        let text = "spec:\n  inputs:\n    n: {type: number}\n    b: {type: boolean}\n    l: {type: array}\n---\nj:\n  parallel: $[[ inputs.n ]]\n  script:\n    - echo $[[ inputs.b ]] $[[ inputs.l ]]\n";
        let given = serde_json::json!({"n": "3", "b": "true", "l": "[\"x\", 2]"});
        let got = run(text, given.clone(), Origin::Request).unwrap();
        assert_eq!(got["j"]["parallel"], 3);
        assert_eq!(got["j"]["script"][0], "echo true [\"x\",2]");
        let err = run(text, given, Origin::Yaml).unwrap_err();
        assert!(err.contains("`n` input: provided value is not a number"), "{err}");
    }

    #[test]
    fn blocks_follow_gitlabs_rules() {
        let head = "spec:\n  inputs:\n    a:\n      default: hello\n---\n";
        let cases = [
            ("k: $[[ inputs ]]\n", Err("invalid interpolation access pattern")),
            ("k: $[[ env.a ]]\n", Err("unknown interpolation key: `env`")),
            ("k: $[[ inputs.a.b ]]\n", Err("unknown interpolation key: `b`")),
            (
                "k: $[[ inputs.a | truncate(0,1) | truncate(0,1) | truncate(0,1) | truncate(0,1) ]]\n",
                Err("too many functions in interpolation block"),
            ),
            ("k: $[[ inputs.a | truncate(1,3) ]]\n", Ok("ell")),
            ("k: '$[[ inputs.a | truncate(9,3) ]]'\n", Ok("")),
            ("k: $[[ matrix.OS ]]-$[[ inputs.a ]]\n", Ok("$[[ matrix.OS ]]-hello")),
            ("k: $[[ inputs.a ]] $[[inputs.a]]\n", Ok("hello hello")),
            ("k: $[[ x ]]\n", Ok("$[[ x ]]")),
            ("$[[ inputs.a ]]-job: v\n", Ok("key")),
        ];
        for (content, want) in cases {
            let got = run(&format!("{head}{content}"), serde_json::json!({}), Origin::Yaml);
            match (want, got) {
                (Ok("key"), Ok(v)) => assert_eq!(v["hello-job"], "v"),
                (Ok(w), Ok(v)) => assert_eq!(v["k"], w, "{content}"),
                (Err(w), Err(e)) => assert!(e.contains(w), "{content}: {e}"),
                (w, g) => panic!("{content}: wanted {w:?}, got {g:?}"),
            }
        }
        let text =
            "spec:\n  inputs:\n    a:\n      default: '$A and $B and %A%'\n---\nk: $[[ inputs.a | expand_vars ]]\n";
        assert_eq!(
            run(text, serde_json::json!({}), Origin::Yaml).unwrap()["k"],
            "a-value and $B and a-value"
        );
        let text =
            "spec:\n  inputs:\n    a:\n      type: number\n      default: 1\n---\nk: $[[ inputs.a | expand_vars ]]\n";
        assert!(run(text, serde_json::json!({}), Origin::Yaml).unwrap_err().contains(
            "error in `expand_vars` function: invalid input type: expand_vars can only be used with string inputs"
        ));
    }

    #[test]
    fn expand_vars_is_one_level_refuses_masked_variables_and_is_bounded() {
        let head = "spec:\n  inputs:\n    a:\n---\nk: '$[[ inputs.a | expand_vars ]]'\n";
        let got = run(head, serde_json::json!({"a": "$NESTED ${A}"}), Origin::Yaml).unwrap();
        assert_eq!(got["k"], "$A a-value", "GitLab expands one level");
        let err = run(head, serde_json::json!({"a": "x $SECRET"}), Origin::Yaml).unwrap_err();
        assert_eq!(
            err,
            "error in `expand_vars` function: variable expansion error: masked variables cannot be expanded"
        );
        let values = [("A".to_string(), "x".repeat(400_000))];
        let vars = Vars {
            values: &values,
            masked: &[],
        };
        let many = "%A%".repeat(150_000);
        assert!(matches!(
            expand_existing(&many, vars),
            Err(e) if e == "config too large"
        ));
    }

    #[test]
    fn scanning_a_line_of_unclosed_blocks_is_linear() {
        let text = format!(
            "spec:\n  inputs:\n    a:\n      default: x\n---\nk: '{}'\n",
            "$[[ a".repeat(200_000)
        );
        let started = std::time::Instant::now();
        let _ = run(&text, serde_json::json!({}), Origin::Yaml);
        // Quadratic scanning took minutes here; linear takes milliseconds.
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
    }

    #[test]
    fn regex_classes_are_ascii_as_in_re2_and_pipes_split_as_in_ruby() {
        let text = "spec:\n  inputs:\n    a:\n      regex: ^[\\w-]{1,64}$\n---\nk: '$[[ inputs.a |]]-$[[ inputs.a | truncate(0,99999999999999999999) ]]'\n";
        let got = run(text, serde_json::json!({"a": "ok-1"}), Origin::Yaml).unwrap();
        assert_eq!(got["k"], "ok-1-ok-1");
        let err = run(text, serde_json::json!({"a": "٣"}), Origin::Yaml).unwrap_err();
        assert!(err.contains("does not match required RegEx pattern"), "{err}");
        let spaced = "spec:\n  inputs:\n    a b:\n      default: x\n---\nk: v\n";
        assert!(
            run(spaced, serde_json::json!({}), Origin::Yaml).is_ok(),
            "any string names an input"
        );
    }

    #[test]
    fn interpolation_is_bounded() {
        let big = "x".repeat(1 << 20);
        let text = format!(
            "spec:\n  inputs:\n    a:\n      default: {big}\n---\nk: [{}]\n",
            ["$[[ inputs.a ]]"; 4].join(", ")
        );
        assert_eq!(
            run(&text, serde_json::json!({}), Origin::Yaml).unwrap_err(),
            "config too large"
        );
        let mut many = String::from("spec:\n  inputs:\n    a:\n      default: x\n---\nk:\n");
        for i in 0..=MAX_BLOCKS {
            many.push_str(&format!("  - $[[ inputs.a | truncate({i},1) ]]\n"));
        }
        assert_eq!(
            run(&many, serde_json::json!({}), Origin::Yaml).unwrap_err(),
            "too many interpolation blocks"
        );
    }

    #[test]
    fn declared_inputs_for_forms() {
        let specs = declared("spec:\n  inputs:\n    env:\n      options: [a, b]\n      description: Where\n    n:\n      type: number\n      default: 2\n---\nj: {script: x}\n").unwrap();
        assert_eq!(specs.len(), 2);
        assert_eq!(
            (specs[0].kind, specs[0].description.as_deref()),
            (Kind::String, Some("Where"))
        );
        assert_eq!(
            (specs[1].kind, specs[1].default.clone()),
            (Kind::Number, Some(Yaml::Int(2)))
        );
        assert!(declared("j: {script: x}\n").unwrap().is_empty());
    }
}
