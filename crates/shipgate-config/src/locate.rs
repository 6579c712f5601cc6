//! Line numbers for keys in a TOML file, and syntax errors with their position.

use std::path::Path;
use std::sync::OnceLock;

use toml_edit::{ImDocument, Item, Value};

use crate::error::{ConfigProblem, Origin};

/// Parses the file; a syntax error is reported with its line and column.
pub(crate) fn parse(text: &str, path: &Path) -> Result<ImDocument<String>, Box<ConfigProblem>> {
    match ImDocument::parse(text.to_owned()) {
        Ok(doc) => Ok(doc),
        Err(err) => {
            let line = err.span().map(|span| line_at(text, span.start));
            let column = err.span().map(|span| column_at(text, span.start));
            let mut message = format!("TOML syntax error: {}", err.message().trim());
            if let Some(column) = column {
                message.push_str(&format!(" (column {column})"));
            }
            Err(Box::new(ConfigProblem {
                origin: Origin::File {
                    path: path.to_owned(),
                    line,
                },
                key: None,
                line,
                message,
                hint: Some("fix the TOML syntax at that line".to_owned()),
            }))
        }
    }
}

fn line_at(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text.as_bytes()[..offset]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

fn column_at(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    text[start..offset].chars().count() + 1
}

/// The file's text, kept for line lookups. The values are deserialized from the first parse;
/// the spans are only needed for errors and for origins of keys the file sets, so the text is
/// parsed a second time on the first such lookup and that document serves every later one.
#[derive(Debug)]
pub(crate) struct SourceLines {
    text: String,
    document: OnceLock<Option<ImDocument<String>>>,
}

impl SourceLines {
    pub(crate) fn new(text: String) -> Self {
        Self {
            text,
            document: OnceLock::new(),
        }
    }

    /// The line of the deepest part of `segments` present in the file.
    pub(crate) fn line_of(&self, segments: &[&str]) -> Option<usize> {
        let document = self
            .document
            .get_or_init(|| ImDocument::parse(self.text.clone()).ok());
        line_in(document.as_ref()?, segments)
    }
}

fn line_in(doc: &ImDocument<String>, segments: &[&str]) -> Option<usize> {
    let text = doc.raw();
    let mut best: Option<usize> = None;
    let mut node = Node::Table(doc.as_table());
    for segment in segments {
        let (next, offset) = match node {
            Node::Table(table) => match table.get_key_value(segment) {
                Some((key, item)) => (Node::from_item(item), key.span().map(|s| s.start)),
                None => break,
            },
            Node::InlineTable(table) => match table.get_key_value(segment) {
                Some((key, item)) => (Node::from_item(item), key.span().map(|s| s.start)),
                None => break,
            },
            Node::Tables(array) => match segment.parse::<usize>().ok().and_then(|i| array.get(i)) {
                Some(table) => (Some(Node::Table(table)), table.span().map(|s| s.start)),
                None => break,
            },
            Node::Value(Value::Array(array)) => {
                match segment.parse::<usize>().ok().and_then(|i| array.get(i)) {
                    Some(value) => (Some(Node::from_value(value)), value.span().map(|s| s.start)),
                    None => break,
                }
            }
            Node::Value(_) => break,
        };
        if offset.is_some() {
            best = offset;
        }
        match next {
            Some(next) => node = next,
            None => break,
        }
    }
    best.map(|offset| line_at(text, offset))
}

enum Node<'a> {
    Table(&'a toml_edit::Table),
    InlineTable(&'a toml_edit::InlineTable),
    Tables(&'a toml_edit::ArrayOfTables),
    Value(&'a Value),
}

impl<'a> Node<'a> {
    fn from_item(item: &'a Item) -> Option<Node<'a>> {
        match item {
            Item::Table(table) => Some(Node::Table(table)),
            Item::ArrayOfTables(array) => Some(Node::Tables(array)),
            Item::Value(value) => Some(Node::from_value(value)),
            Item::None => None,
        }
    }

    fn from_value(value: &'a Value) -> Node<'a> {
        match value {
            Value::InlineTable(table) => Node::InlineTable(table),
            other => Node::Value(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "app = \"x\"\n\n[smoke]\nenabled = true\n\n[[smoke.checks]]\nname = \"a\"\n\n[[smoke.checks]]\nname = \"b\"\nretry = { attempts = 3 }\n";

    fn doc() -> ImDocument<String> {
        ImDocument::parse(DOC.to_owned()).unwrap()
    }

    #[test]
    fn finds_nested_keys_and_array_entries() {
        assert_eq!(line_in(&doc(), &["app"]), Some(1));
        assert_eq!(line_in(&doc(), &["smoke", "enabled"]), Some(4));
        assert_eq!(line_in(&doc(), &["smoke", "checks", "1", "name"]), Some(10));
        assert_eq!(
            line_in(&doc(), &["smoke", "checks", "1", "retry", "attempts"]),
            Some(11)
        );
        // A missing leaf points at its deepest existing parent.
        assert_eq!(line_in(&doc(), &["smoke", "checks", "0", "nope"]), Some(6));
        assert_eq!(line_in(&doc(), &["nothing"]), None);
    }

    #[test]
    fn syntax_errors_carry_line_and_column() {
        let problem = parse("a = 1\nb = = 2\n", Path::new("x.toml")).unwrap_err();
        assert_eq!(problem.line, Some(2));
        assert!(problem.message.contains("column"), "{}", problem.message);
    }
}
