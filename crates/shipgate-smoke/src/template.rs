//! `{{name}}` placeholders in paths, headers and bodies, filled from earlier checks' captures.

use std::collections::HashMap;

use shipgate_core::Secret;

/// A string with `{{name}}` placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Capture(String),
}

impl Template {
    /// Parses `text`; an unclosed `{{` or an invalid name is an error message.
    pub(crate) fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(Part::Text(rest[..start].to_owned()));
            }
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| format!("`{{{{` without a closing `}}}}` in `{text}`"))?;
            let name = after[..end].trim();
            if !is_capture_name(name) {
                return Err(format!(
                    "`{{{{{name}}}}}` is not a capture name (letters, digits and `_`)"
                ));
            }
            parts.push(Part::Capture(name.to_owned()));
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Template { parts })
    }

    /// The capture names used, in order.
    pub(crate) fn captures(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Capture(name) => Some(name.as_str()),
            Part::Text(_) => None,
        })
    }

    /// The text with captures filled in. A capture that is missing renders empty; the engine
    /// never renders a check whose captures are missing.
    pub(crate) fn render(&self, captures: &HashMap<String, Secret>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Capture(name) => {
                    if let Some(value) = captures.get(name) {
                        out.push_str(value.expose());
                    }
                }
            }
        }
        out
    }

    /// The text with captures shown as `{{name}}`: safe for reports.
    pub(crate) fn display(&self) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Capture(name) => {
                    out.push_str("{{");
                    out.push_str(name);
                    out.push_str("}}");
                }
            }
        }
        out
    }
}

/// Capture names: a letter or `_`, then letters, digits or `_`.
pub(crate) fn is_capture_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A JSON body whose strings may hold placeholders. Substitution happens inside string values
/// only, so a captured value can never break the JSON.
#[derive(Debug, Clone)]
pub(crate) struct JsonTemplate {
    value: serde_json::Value,
    captures: Vec<String>,
}

impl JsonTemplate {
    pub(crate) fn parse(value: &serde_json::Value) -> Result<JsonTemplate, String> {
        let mut captures = Vec::new();
        collect(value, &mut captures)?;
        Ok(JsonTemplate {
            value: value.clone(),
            captures,
        })
    }

    pub(crate) fn captures(&self) -> impl Iterator<Item = &str> {
        self.captures.iter().map(String::as_str)
    }

    pub(crate) fn render(&self, captures: &HashMap<String, Secret>) -> serde_json::Value {
        fill(&self.value, captures)
    }
}

fn collect(value: &serde_json::Value, out: &mut Vec<String>) -> Result<(), String> {
    match value {
        serde_json::Value::String(text) => {
            out.extend(Template::parse(text)?.captures().map(str::to_owned));
        }
        serde_json::Value::Array(items) => {
            for item in items {
                collect(item, out)?;
            }
        }
        serde_json::Value::Object(map) => {
            for item in map.values() {
                collect(item, out)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn fill(value: &serde_json::Value, captures: &HashMap<String, Secret>) -> serde_json::Value {
    match value {
        serde_json::Value::String(text) => match Template::parse(text) {
            Ok(template) => serde_json::Value::String(template.render(captures)),
            Err(_) => value.clone(),
        },
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.iter().map(|v| fill(v, captures)).collect())
        }
        serde_json::Value::Object(map) => serde_json::Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), fill(v, captures)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_renders_placeholders() {
        let t = Template::parse("/users/{{ id }}/orders?token={{token}}").unwrap();
        assert_eq!(t.captures().collect::<Vec<_>>(), ["id", "token"]);
        let captures = HashMap::from([
            ("id".to_owned(), Secret::new("42")),
            ("token".to_owned(), Secret::new("t0k")),
        ]);
        assert_eq!(t.render(&captures), "/users/42/orders?token=t0k");
        assert_eq!(t.display(), "/users/{{id}}/orders?token={{token}}");
        assert_eq!(Template::parse("/plain").unwrap().display(), "/plain");
    }

    #[test]
    fn rejects_unclosed_and_invalid_placeholders() {
        assert!(Template::parse("/x/{{id").is_err());
        assert!(Template::parse("/x/{{1id}}").is_err());
        assert!(Template::parse("/x/{{a-b}}").is_err());
    }

    #[test]
    fn json_bodies_substitute_inside_strings_only() {
        let body = serde_json::json!({"auth": "Bearer {{token}}", "n": 1, "list": ["{{token}}"]});
        let t = JsonTemplate::parse(&body).unwrap();
        assert_eq!(t.captures().count(), 2);
        let captures = HashMap::from([("token".to_owned(), Secret::new("a\"b"))]);
        let out = t.render(&captures);
        assert_eq!(out["auth"], "Bearer a\"b");
        assert_eq!(out["list"][0], "a\"b");
        assert_eq!(out["n"], 1);
    }
}
