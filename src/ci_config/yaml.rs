//! Loads `.gitlab-ci.yml` text the way GitLab (Ruby's Psych) does: anchors and aliases,
//! duplicate keys where the last wins, `<<` merge keys applied in document order (a merged
//! mapping's keys override keys written before the `<<` and yield to keys written after; in
//! `<<: [*a, *b]` the first source wins), `!reference` kept as a tag for later resolution, the
//! two-document header split, and Psych-style error texts. Alias bombs and deep nesting are
//! refused by the parser's own limits.

use serde::de::{self, Deserialize, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor};
use std::fmt;

/// A YAML value as GitLab sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Yaml {
    /// `null`, `~` or nothing.
    Null,
    /// `true` / `false` (YAML 1.2 spelling; `yes`/`on` arrive as strings and are read leniently
    /// where GitLab expects a boolean).
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// Text.
    Str(String),
    /// A sequence.
    Seq(Vec<Yaml>),
    /// A mapping with string keys, in document order, each key once.
    Map(Mapping),
    /// A tagged value: `!reference [a, b]` is `Tagged("reference", Seq[..])`.
    Tagged(String, Box<Yaml>),
}

/// A mapping in document order with unique keys.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mapping(Vec<(String, Yaml)>);

impl Mapping {
    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Yaml> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Sets `key`, keeping its position if it exists (as a Ruby Hash does).
    pub fn insert(&mut self, key: String, value: Yaml) {
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key, value)),
        }
    }

    /// Appends `key`, which the caller knows is not in the mapping yet (linear-time building).
    pub fn push_new(&mut self, key: String, value: Yaml) {
        self.0.push((key, value));
    }

    /// The value at position `i`, to change it.
    pub fn value_at_mut(&mut self, i: usize) -> Option<&mut Yaml> {
        self.0.get_mut(i).map(|(_, v)| v)
    }

    /// The value of `key`, to change it.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Yaml> {
        self.0.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The entries, consuming the mapping.
    pub fn into_entries(self) -> Vec<(String, Yaml)> {
        self.0
    }

    /// Removes `key`.
    pub fn remove(&mut self, key: &str) -> Option<Yaml> {
        let i = self.0.iter().position(|(k, _)| k == key)?;
        Some(self.0.remove(i).1)
    }

    /// Entries in document order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Yaml)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Why a file could not be loaded; the texts are GitLab's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadError {
    /// A YAML syntax error: `(<unknown>): <problem> ... at line L column C`.
    Syntax(String),
    /// Over GitLab's size or depth limit: `The parsed YAML is too big`.
    TooBig,
    /// The document is empty: `Please provide content of .gitlab-ci.yml`.
    Empty,
    /// The root is not a mapping: `Invalid configuration format`.
    NotAMapping,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Syntax(message) => write!(f, "(<unknown>): {message}"),
            LoadError::Empty => write!(f, "Please provide content of .gitlab-ci.yml"),
            LoadError::NotAMapping => write!(f, "Invalid configuration format"),
            LoadError::TooBig => write!(f, "The parsed YAML is too big"),
        }
    }
}

impl std::error::Error for LoadError {}

/// Loads a `.gitlab-ci.yml`: the configuration mapping (the second document when the first is a
/// `spec:` header), and the header, if any. Nothing is interpolated (see `inputs`).
pub fn load(text: &str) -> Result<(Mapping, Option<Mapping>), LoadError> {
    let (header, content) = split(text)?;
    Ok((parse_root(content)?, header))
}

/// Parses one configuration document's text (no header split) into its root mapping.
pub fn parse_root(text: &str) -> Result<Mapping, LoadError> {
    if text.len() > MAX_YAML_BYTES || flow_depth(text) > MAX_YAML_DEPTH {
        return Err(LoadError::TooBig);
    }
    root_mapping(parse(text)?)
}

/// Splits a file into its `spec:` header (parsed), if it has one, and the text of the
/// configuration document. A leading `---` (an empty first document) is skipped; without a
/// header only the first document counts.
pub fn split(text: &str) -> Result<(Option<Mapping>, &str), LoadError> {
    // GitLab's limits (max_yaml_size_bytes, max_yaml_depth), checked before the parser sees the
    // text: deeply nested flow collections cost the parser quadratic time.
    if text.len() > MAX_YAML_BYTES || flow_depth(text) > MAX_YAML_DEPTH {
        return Err(LoadError::TooBig);
    }
    let (mut first, mut second) = split_documents(text);
    if let Some(rest) = second
        && is_blank(first)
    {
        (first, second) = split_documents(rest);
    }
    let Some(second) = second else {
        return Ok((None, first));
    };
    match parse(first)? {
        None => Ok((None, second)),
        Some(Yaml::Map(header)) if header.get("spec").is_some() => Ok((Some(header), second)),
        Some(_) => Ok((None, first)),
    }
}

/// A JSON value (an API's `inputs`) as YAML.
pub fn from_json(v: &serde_json::Value) -> Yaml {
    use serde_json::Value;
    match v {
        Value::Null => Yaml::Null,
        Value::Bool(b) => Yaml::Bool(*b),
        Value::Number(n) => n
            .as_i64()
            .map(Yaml::Int)
            .unwrap_or_else(|| Yaml::Float(n.as_f64().unwrap_or_default())),
        Value::String(s) => Yaml::Str(s.clone()),
        Value::Array(items) => Yaml::Seq(items.iter().map(from_json).collect()),
        Value::Object(o) => Yaml::Map(Mapping(o.iter().map(|(k, v)| (k.clone(), from_json(v))).collect())),
    }
}

fn is_blank(text: &str) -> bool {
    text.lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
}

/// A value as JSON (a tag becomes `{"!tag": value}`), for `merged_yaml` and tests.
pub fn to_json(y: &Yaml) -> serde_json::Value {
    use serde_json::{Value, json};
    match y {
        Yaml::Null => Value::Null,
        Yaml::Bool(b) => json!(b),
        Yaml::Int(i) => json!(i),
        Yaml::Float(f) => json!(f),
        Yaml::Str(s) => json!(s),
        Yaml::Seq(items) => Value::Array(items.iter().map(to_json).collect()),
        Yaml::Map(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()),
        Yaml::Tagged(tag, v) => json!({ format!("!{tag}"): to_json(v) }),
    }
}

/// The largest configuration file accepted (GitLab's default `max_yaml_size_bytes`).
pub const MAX_YAML_BYTES: usize = 2 << 20;
/// The deepest nesting of flow collections accepted (GitLab's default `max_yaml_depth`).
pub const MAX_YAML_DEPTH: usize = 100;

/// The deepest nesting of `[`/`{` outside quoted scalars and comments (a cheap bound, not a
/// parser). A quote opens a scalar only where one can start (after a space, `[`, `{`, `,`, `:`
/// or a line start), so an apostrophe inside a word cannot hide brackets from it.
fn flow_depth(text: &str) -> usize {
    // Bytes, not chars: every character that matters is ASCII, and UTF-8 continuation bytes
    // never equal one.
    let (mut depth, mut deepest) = (0usize, 0usize);
    let mut quote: Option<u8> = None;
    let mut comment = false;
    let mut previous = b'\n';
    for &c in text.as_bytes() {
        if comment {
            comment = c != b'\n';
        } else {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, b'\'' | b'"') if matches!(previous, b' ' | b'\t' | b'\n' | b'[' | b'{' | b',' | b':' | b'-') => {
                    quote = Some(c)
                }
                (None, b'#') if matches!(previous, b' ' | b'\t' | b'\n') => comment = true,
                (None, b'[' | b'{') => {
                    depth += 1;
                    deepest = deepest.max(depth);
                }
                (None, b']' | b'}') => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        previous = c;
    }
    deepest
}

fn root_mapping(doc: Option<Yaml>) -> Result<Mapping, LoadError> {
    match doc {
        None | Some(Yaml::Null) => Err(LoadError::Empty),
        Some(Yaml::Map(m)) => Ok(m),
        Some(_) => Err(LoadError::NotAMapping),
    }
}

/// Splits at the first line that starts with `---` followed by white space (GitLab's
/// multi-document rule: at most two documents).
fn split_documents(text: &str) -> (&str, Option<&str>) {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if let Some(rest) = line.strip_prefix("---")
            && rest.starts_with(char::is_whitespace)
        {
            return (&text[..offset], Some(&text[offset + line.len()..]));
        }
        offset += line.len();
    }
    (text, None)
}

/// Parses one document; `None` when it holds nothing but comments or blank lines.
fn parse(text: &str) -> Result<Option<Yaml>, LoadError> {
    if is_blank(text) {
        return Ok(None);
    }
    let deserializer = yaml_serde::Deserializer::from_str(text);
    Yaml::deserialize(deserializer)
        .map(Some)
        .map_err(|e| LoadError::Syntax(e.to_string()))
}

impl<'de> Deserialize<'de> for Yaml {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Yaml, D::Error> {
        deserializer.deserialize_any(YamlVisitor)
    }
}

struct YamlVisitor;

impl<'de> Visitor<'de> for YamlVisitor {
    type Value = Yaml;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Yaml, E> {
        Ok(Yaml::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Yaml, E> {
        Ok(Yaml::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Yaml, E> {
        Ok(i64::try_from(v).map_or(Yaml::Float(v as f64), Yaml::Int))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Yaml, E> {
        Ok(Yaml::Float(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Yaml, E> {
        Ok(Yaml::Str(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Yaml, E> {
        Ok(Yaml::Str(v))
    }

    fn visit_unit<E>(self) -> Result<Yaml, E> {
        Ok(Yaml::Null)
    }

    fn visit_none<E>(self) -> Result<Yaml, E> {
        Ok(Yaml::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Yaml, D::Error> {
        Yaml::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Yaml, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Yaml>()? {
            items.push(item);
        }
        Ok(Yaml::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Yaml, A::Error> {
        let mut out = Mapping::default();
        // Key positions, so that a mapping of thousands of jobs loads in linear time.
        let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        while let Some(key) = map.next_key::<Yaml>()? {
            let value = map.next_value::<Yaml>()?;
            let key = key_text(key).map_err(de::Error::custom)?;
            if key == "<<" {
                merge(&mut out, value);
                index = out.0.iter().enumerate().map(|(i, (k, _))| (k.clone(), i)).collect();
            } else if let Some(&i) = index.get(&key) {
                out.0[i].1 = value;
            } else {
                index.insert(key.clone(), out.0.len());
                out.0.push((key, value));
            }
        }
        Ok(Yaml::Map(out))
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Yaml, A::Error> {
        let (tag, variant) = data.variant::<String>()?;
        let value = variant.newtype_variant::<Yaml>()?;
        Ok(Yaml::Tagged(tag, Box::new(value)))
    }
}

/// A mapping key as text (Psych symbolises scalar keys; other keys are not valid here).
fn key_text(key: Yaml) -> Result<String, String> {
    match key {
        Yaml::Str(s) => Ok(s),
        Yaml::Int(i) => Ok(i.to_string()),
        Yaml::Float(f) => Ok(f.to_string()),
        Yaml::Bool(b) => Ok(b.to_string()),
        Yaml::Null => Ok(String::new()),
        _ => Err("mapping keys must be scalars".to_string()),
    }
}

/// Applies a `<<` merge at its place in the document: the merged keys override what came
/// before; for a list of mappings the first one wins.
fn merge(target: &mut Mapping, source: Yaml) {
    match source {
        Yaml::Map(m) => {
            for (k, v) in m.0 {
                target.insert(k, v);
            }
        }
        Yaml::Seq(items) => {
            for item in items.into_iter().rev() {
                merge(target, item);
            }
        }
        other => target.insert("<<".to_string(), other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// (YAML text, expected configuration as JSON, or `{"error": substring}`).
    fn cases() -> Vec<(&'static str, Value)> {
        vec![
            (
                "a: 1\nb: [x, y]\nc: {d: null}\n",
                json!({"a": 1, "b": ["x", "y"], "c": {"d": null}}),
            ),
            // duplicate keys: the last wins, in the first one's place
            ("a: 1\nb: 2\na: 3\n", json!({"a": 3, "b": 2})),
            // anchors and aliases; a list alias inside a list stays nested
            (
                ".s: &s [one, two]\njob:\n  script: [*s, three]\n",
                json!({".s": ["one", "two"], "job": {"script": [["one", "two"], "three"]}}),
            ),
            // << is shallow; keys after it win; nested mappings are not merged
            (
                ".d: &d {image: ruby, variables: {A: '1', B: '2'}}\njob:\n  <<: *d\n  variables: {C: '3'}\n",
                json!({".d": {"image": "ruby", "variables": {"A": "1", "B": "2"}}, "job": {"image": "ruby", "variables": {"C": "3"}}}),
            ),
            // a key written before << is overridden by the merge (Psych merges in place)
            (
                ".d: &d {a: from-anchor}\njob:\n  a: before\n  <<: *d\n",
                json!({".d": {"a": "from-anchor"}, "job": {"a": "from-anchor"}}),
            ),
            // <<: [*a, *b]: the first source wins
            (
                ".a: &a {x: a, y: a}\n.b: &b {x: b, z: b}\njob:\n  <<: [*a, *b]\n",
                json!({".a": {"x": "a", "y": "a"}, ".b": {"x": "b", "z": "b"}, "job": {"x": "a", "z": "b", "y": "a"}}),
            ),
            // two << keys
            (
                ".a: &a {x: a}\n.b: &b {y: b}\njob:\n  <<: *a\n  <<: *b\n",
                json!({".a": {"x": "a"}, ".b": {"y": "b"}, "job": {"x": "a", "y": "b"}}),
            ),
            // !reference is kept for later resolution
            (
                "job:\n  script:\n    - !reference [.setup, script]\n    - echo\n",
                json!({"job": {"script": [{"!reference": [".setup", "script"]}, "echo"]}}),
            ),
            // yes/on stay text here; booleans are read leniently where GitLab expects one
            (
                "a: yes\nb: on\nc: true\nd: 'true'\n",
                json!({"a": "yes", "b": "on", "c": true, "d": "true"}),
            ),
            // a spec: header document, then the configuration
            (
                "spec:\n  inputs:\n    x: {}\n---\njob: {script: echo}\n",
                json!({"job": {"script": "echo"}}),
            ),
            // a leading --- gives an empty first document, which is dropped
            ("---\njob: {script: echo}\n", json!({"job": {"script": "echo"}})),
            // a leading --- before a header and its configuration
            (
                "---\nspec:\n  inputs: {}\n---\njob: {script: echo}\n",
                json!({"job": {"script": "echo"}}),
            ),
            // two documents without a header: only the first counts
            ("a: 1\n--- \nb: 2\n", json!({"a": 1})),
            ("", json!({"error": "Please provide content of .gitlab-ci.yml"})),
            (
                "# only a comment\n",
                json!({"error": "Please provide content of .gitlab-ci.yml"}),
            ),
            ("- a\n- b\n", json!({"error": "Invalid configuration format"})),
            ("just text\n", json!({"error": "Invalid configuration format"})),
            (
                "job:\n  script: echo\n bad: indentation\n",
                json!({"error": "(<unknown>): did not find expected key"}),
            ),
            (
                "a: b: c\n",
                json!({"error": "mapping values are not allowed in this context"}),
            ),
            ("a: *missing\n", json!({"error": "(<unknown>): "})),
        ]
    }

    #[test]
    fn loads_like_psych() {
        let mut failures = Vec::new();
        for (text, expected) in cases() {
            let got = match load(text) {
                Ok((config, _)) => to_json(&Yaml::Map(config)),
                Err(e) => json!({"error": e.to_string()}),
            };
            let ok = match (
                expected.get("error").and_then(Value::as_str),
                got.get("error").and_then(Value::as_str),
            ) {
                (Some(want), Some(have)) if expected.as_object().is_some_and(|o| o.len() == 1) => have.contains(want),
                _ => got == expected,
            };
            if !ok {
                failures.push(format!("{text:?}\n  expected {expected}\n  got      {got}"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn header_is_returned() {
        let (_, header) = load("spec:\n  inputs: {}\n---\njob: {script: x}\n").unwrap();
        assert!(header.unwrap().get("spec").is_some());
    }

    #[test]
    fn alias_bombs_and_deep_nesting_are_refused() {
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x]\n");
        for i in 0..9 {
            let prev = if i == 0 { "a".to_string() } else { format!("a{}", i - 1) };
            bomb.push_str(&format!(
                "a{i}: &a{i} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
            ));
        }
        assert!(load(&bomb).is_err());
        let deep = format!("a: {}{}\n", "[".repeat(10_000), "]".repeat(10_000));
        assert!(load(&deep).is_err());
    }

    #[test]
    fn huge_and_deeply_nested_documents_are_refused_before_parsing() {
        let deep = format!("a: {}{}\n", "[".repeat(101), "]".repeat(101));
        assert!(matches!(load(&deep), Err(LoadError::TooBig)));
        let fine = format!("a: {}{}\n", "[".repeat(100), "]".repeat(100));
        assert!(!matches!(load(&fine), Err(LoadError::TooBig)));
        let hidden = format!("a: it's {}{}\n", "[".repeat(101), "]".repeat(101));
        assert!(
            matches!(load(&hidden), Err(LoadError::TooBig)),
            "an apostrophe hides nothing"
        );
        let quoted = format!("a: '{}'\n", "[".repeat(500));
        assert!(
            !matches!(load(&quoted), Err(LoadError::TooBig)),
            "brackets in quotes are text"
        );
        let big = format!("a: '{}'\n", "x".repeat(MAX_YAML_BYTES));
        assert!(matches!(load(&big), Err(LoadError::TooBig)));
        assert_eq!(LoadError::TooBig.to_string(), "The parsed YAML is too big");
    }
}
