//! CI/CD variables of a job: the definition forms, GitLab's precedence (later entries win), and
//! `$NAME`/`${NAME}` expansion with `$$` escapes, raw values and cycle detection.

use super::yaml::Yaml;
use std::collections::HashMap;
use std::sync::Arc;

/// Largest expanded value, in bytes: references can otherwise grow a value exponentially.
pub const MAX_EXPANDED_BYTES: usize = 1 << 20;

/// One variable definition. Name and value are shared, so that the per-job copies of the
/// pipeline's ~60 variables cost reference counts, not allocations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Var {
    /// Name.
    pub name: Arc<str>,
    /// Value, unexpanded.
    pub value: Arc<str>,
    /// `expand: false`: never expanded, not even when referenced.
    pub raw: bool,
}

/// An ordered list of variables where later definitions win.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VarList(pub Vec<Var>);

impl VarList {
    /// Adds or replaces a variable.
    pub fn set(&mut self, name: &str, value: &str, raw: bool) {
        self.put(Var {
            name: name.into(),
            value: value.into(),
            raw,
        });
    }

    /// Adds or replaces a variable, sharing its strings.
    fn put(&mut self, var: Var) {
        // Names are unique in the list: at most one to drop (it moves to the end).
        if let Some(i) = self.0.iter().position(|v| v.name == var.name) {
            self.0.remove(i);
        }
        self.0.push(var);
    }

    /// Adds every variable of `other`, replacing same-named ones.
    pub fn extend(&mut self, other: &VarList) {
        for v in &other.0 {
            self.put(v.clone());
        }
    }

    /// The raw (unexpanded) value of `name`, as `rules:if` sees it.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|v| &*v.name == name).map(|v| &*v.value)
    }

    /// Every variable with references expanded; a reference cycle is an error naming the cycle,
    /// and so is a value that would grow past [`MAX_EXPANDED_BYTES`].
    pub fn expanded(&self) -> Result<Vec<(String, String)>, String> {
        self.expand_where(|_| true)
    }

    /// The variables named in `names`, expanded against the whole list, in list order.
    pub fn expanded_only(&self, names: &[String]) -> Result<Vec<(String, String)>, String> {
        self.expand_where(|name| names.iter().any(|n| n == name))
    }

    fn expand_where(&self, wanted: impl Fn(&str) -> bool) -> Result<Vec<(String, String)>, String> {
        let mut done = HashMap::new();
        let mut out = Vec::with_capacity(self.0.len());
        for v in self.0.iter().filter(|v| wanted(&v.name)) {
            // Most values reference nothing: no lookups, no memo.
            if v.raw || !v.value.contains('$') {
                out.push((String::from(&*v.name), String::from(&*v.value)));
                continue;
            }
            let mut stack = Vec::new();
            out.push((String::from(&*v.name), self.expand_var(v, &mut stack, &mut done)?));
        }
        Ok(out)
    }

    fn expand_var(
        &self,
        v: &Var,
        stack: &mut Vec<String>,
        done: &mut HashMap<String, String>,
    ) -> Result<String, String> {
        if v.raw {
            return Ok(String::from(&*v.value));
        }
        if let Some(value) = done.get(&*v.name) {
            return Ok(value.clone());
        }
        if stack.iter().any(|n| **n == *v.name) {
            let start = stack.iter().position(|n| **n == *v.name).unwrap_or(0);
            return Err(format!(
                "circular variable reference detected: {}",
                stack[start..].join(", ")
            ));
        }
        stack.push(String::from(&*v.name));
        let result = self.expand_text(&v.value, stack, done);
        stack.pop();
        if let Ok(value) = &result {
            done.insert(String::from(&*v.name), value.clone());
        }
        result
    }

    fn expand_text(
        &self,
        text: &str,
        stack: &mut Vec<String>,
        done: &mut HashMap<String, String>,
    ) -> Result<String, String> {
        let mut value_of = |name: &str| match self.0.iter().find(|v| &*v.name == name) {
            Some(var) => self.expand_var(var, stack, done).map(Some),
            None => Ok(None),
        };
        let out = expand_refs(text, MAX_EXPANDED_BYTES, &mut value_of);
        out.map_err(|e| {
            e.unwrap_or_else(|| {
                format!(
                    "variable expansion is too large: {} exceeds {MAX_EXPANDED_BYTES} bytes",
                    stack.join(", ")
                )
            })
        })
    }
}

/// Expands `$NAME` and `${NAME}` in `text` with what `value_of` answers (nothing for an
/// unknown name); `$$` stands for a literal `$`, as in GitLab. The planner's one `$VAR`
/// scanner. Fails with `Err(None)` once the result passes `max_len` bytes, and with
/// `Err(Some(e))` when `value_of` fails.
pub fn expand_refs<E>(
    text: &str,
    max_len: usize,
    value_of: &mut dyn FnMut(&str) -> Result<Option<String>, E>,
) -> Result<String, Option<E>> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
            continue;
        }
        let (name, tail) = if let Some(inner) = after.strip_prefix('{') {
            match inner.find('}') {
                Some(end) => (&inner[..end], &inner[end + 1..]),
                None => ("", after),
            }
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        if name.is_empty() {
            out.push('$');
            rest = after;
            continue;
        }
        if let Some(value) = value_of(name).map_err(Some)? {
            out.push_str(&value);
            if out.len() > max_len {
                return Err(None);
            }
        }
        rest = tail;
    }
    out.push_str(rest);
    Ok(out)
}

/// The text GitLab gives a scalar variable value (`true` → `"true"`, `1` → `"1"`, null → `""`).
pub fn scalar_text(y: &Yaml) -> Option<String> {
    match y {
        Yaml::Null => Some(String::new()),
        Yaml::Str(s) => Some(s.clone()),
        Yaml::Int(i) => Some(i.to_string()),
        Yaml::Float(f) => Some(f.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Reads a `variables:` mapping (`NAME: value` or `NAME: {value:, expand:}`).
pub fn from_yaml(y: Option<&Yaml>, location: &str) -> Result<VarList, String> {
    let mut list = VarList::default();
    match y {
        None | Some(Yaml::Null) => {}
        Some(Yaml::Map(m)) => {
            for (name, value) in m.iter() {
                let (value, raw) = match value {
                    Yaml::Map(def) => {
                        let v = def.get("value").map_or(Some(String::new()), scalar_text);
                        let raw = matches!(def.get("expand"), Some(Yaml::Bool(false)));
                        (v, raw)
                    }
                    other => (scalar_text(other), false),
                };
                let value =
                    value.ok_or_else(|| format!("{location}:variables config should be a hash of key value pairs"))?;
                list.set(name, &value, raw);
            }
        }
        Some(_) => {
            return Err(format!(
                "{location}:variables config should be a hash of key value pairs"
            ));
        }
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(vars: &[(&str, &str, bool)]) -> VarList {
        let mut l = VarList::default();
        for (n, v, raw) in vars {
            l.set(n, v, *raw);
        }
        l
    }

    #[test]
    fn expansion() {
        let l = list(&[
            ("A", "a", false),
            ("B", "$A-${A}-$$A-$UNKNOWN.", false),
            ("C", "$B", true),
            ("D", "x$C", false),
        ]);
        let e = l.expanded().unwrap();
        assert_eq!(e[1], ("B".into(), "a-a-$A-.".into()));
        assert_eq!(e[2], ("C".into(), "$B".into()), "raw values are not expanded");
        assert_eq!(e[3], ("D".into(), "x$B".into()), "nor when referenced");
        let mut bomb = vec![("V0".to_string(), "x".repeat(100))];
        for i in 1..12 {
            bomb.push((format!("V{i}"), format!("$V{}", i - 1).repeat(10)));
        }
        let bomb: Vec<(&str, &str, bool)> = bomb.iter().map(|(n, v)| (n.as_str(), v.as_str(), false)).collect();
        assert!(
            list(&bomb)
                .expanded()
                .unwrap_err()
                .starts_with("variable expansion is too large")
        );
        let cyclic = list(&[("A", "$B", false), ("B", "$A", false)]);
        assert!(
            cyclic
                .expanded()
                .unwrap_err()
                .starts_with("circular variable reference detected: A, B")
        );
    }
}
