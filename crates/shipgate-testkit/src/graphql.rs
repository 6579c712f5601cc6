//! Railway's GraphQL schema (`specs/railway/schema.json`, the introspection result Railway's
//! CLI ships; see `specs/railway/SOURCE.md`) as a real validator.
//!
//! The introspection JSON is turned into SDL and loaded into `apollo-compiler`, which then
//! validates operation documents the way a GraphQL server does (unknown fields, wrong
//! argument types, selections on scalars, missing variables). [`RailwaySchema::check_data`]
//! goes the other way: it checks that a response's `data` has exactly the shape and types the
//! operation's selection asks for, so the fake server cannot drift from the real schema.
//!
//! The schema is loaded without schema validation ("assume valid"), as the research notes
//! advise: Railway's schema marks `Team.id` deprecated while the `Node.id` it implements is
//! not, which a strict schema validator rejects although every server-side check passes.

use std::fmt::Write as _;
use std::sync::OnceLock;

use apollo_compiler::ast::Type;
use apollo_compiler::executable::{Selection, SelectionSet};
use apollo_compiler::schema::ExtendedType;
use apollo_compiler::validation::Valid;
use apollo_compiler::{ExecutableDocument, Schema};
use serde_json::Value;

/// Railway's public GraphQL schema.
pub struct RailwaySchema {
    schema: Valid<Schema>,
}

impl std::fmt::Debug for RailwaySchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RailwaySchema")
    }
}

/// The schema, loaded once per process.
pub fn railway_schema() -> &'static RailwaySchema {
    static SCHEMA: OnceLock<RailwaySchema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/specs/railway/schema.json");
        let text = std::fs::read_to_string(path).unwrap();
        let introspection: Value = serde_json::from_str(&text).unwrap();
        let sdl = introspection_to_sdl(&introspection["data"]["__schema"]);
        let schema = Schema::parse(sdl, "railway-schema.graphql")
            .unwrap_or_else(|e| panic!("Railway schema SDL: {}", e.errors));
        RailwaySchema {
            schema: Valid::assume_valid(schema),
        }
    })
}

impl RailwaySchema {
    /// Validates one operation document; the error lists every problem.
    pub fn validate(&self, document: &str) -> Result<Valid<ExecutableDocument>, String> {
        ExecutableDocument::parse_and_validate(&self.schema, document, "operation.graphql")
            .map_err(|e| e.errors.to_string())
    }

    /// The values of enum `name` (empty if there is no such enum).
    pub fn enum_values(&self, name: &str) -> Vec<String> {
        match self.schema.types.get(name) {
            Some(ExtendedType::Enum(e)) => e.values.keys().map(|k| k.to_string()).collect(),
            _ => Vec::new(),
        }
    }

    /// Checks that `data` is what `operation` of `document` selects: every selected field
    /// present (under its alias), nothing else, scalars of the declared type, enum values the
    /// schema defines, no null where the schema says non-null.
    pub fn check_data(
        &self,
        document: &Valid<ExecutableDocument>,
        operation: Option<&str>,
        data: &Value,
    ) -> Result<(), String> {
        let op = document
            .operations
            .get(operation)
            .map_err(|_| format!("no operation {operation:?} in the document"))?;
        self.check_selection(document, &op.selection_set, data, "data")
    }

    /// Builds the response `data` for `operation` from `full`, an object keyed by field names
    /// that holds at least every selected field: keeps what is selected (under its alias),
    /// drops the rest. A fake answers with this, then [`RailwaySchema::check_data`] proves the
    /// answer has the schema's types.
    pub fn select(
        &self,
        document: &Valid<ExecutableDocument>,
        operation: Option<&str>,
        full: &Value,
    ) -> Value {
        match document.operations.get(operation) {
            Ok(op) => select_set(document, &op.selection_set, full),
            Err(_) => Value::Null,
        }
    }

    fn check_selection(
        &self,
        document: &ExecutableDocument,
        set: &SelectionSet,
        value: &Value,
        at: &str,
    ) -> Result<(), String> {
        let Value::Object(object) = value else {
            return Err(format!("{at}: expected an object, got {value}"));
        };
        let mut expected = Vec::new();
        self.collect_fields(document, set, value, at, &mut expected)?;
        for key in object.keys() {
            if !expected.contains(key) {
                return Err(format!("{at}.{key}: not selected by the operation"));
            }
        }
        Ok(())
    }

    fn collect_fields(
        &self,
        document: &ExecutableDocument,
        set: &SelectionSet,
        value: &Value,
        at: &str,
        expected: &mut Vec<String>,
    ) -> Result<(), String> {
        for selection in &set.selections {
            match selection {
                Selection::Field(field) => {
                    let key = field.response_key().to_string();
                    if field.name.as_str() == "__typename" {
                        expected.push(key);
                        continue;
                    }
                    let Some(item) = value.get(&key) else {
                        return Err(format!("{at}.{key}: selected but missing"));
                    };
                    self.check_value(
                        document,
                        &field.definition.ty,
                        &field.selection_set,
                        item,
                        &format!("{at}.{key}"),
                    )?;
                    expected.push(key);
                }
                Selection::InlineFragment(fragment) => {
                    self.collect_fields(document, &fragment.selection_set, value, at, expected)?;
                }
                Selection::FragmentSpread(spread) => {
                    let fragment = document
                        .fragments
                        .get(&spread.fragment_name)
                        .ok_or_else(|| format!("{at}: unknown fragment"))?;
                    self.collect_fields(document, &fragment.selection_set, value, at, expected)?;
                }
            }
        }
        Ok(())
    }

    fn check_value(
        &self,
        document: &ExecutableDocument,
        ty: &Type,
        set: &SelectionSet,
        value: &Value,
        at: &str,
    ) -> Result<(), String> {
        if value.is_null() {
            return if ty.is_non_null() {
                Err(format!("{at}: null where the schema says {ty}"))
            } else {
                Ok(())
            };
        }
        if ty.is_list() {
            let Value::Array(items) = value else {
                return Err(format!("{at}: expected a list ({ty}), got {value}"));
            };
            let item_ty = ty.item_type();
            for (i, item) in items.iter().enumerate() {
                self.check_value(document, item_ty, set, item, &format!("{at}[{i}]"))?;
            }
            return Ok(());
        }
        let name = ty.inner_named_type();
        match self.schema.types.get(name) {
            Some(ExtendedType::Scalar(_)) => {
                let ok = match name.as_str() {
                    "String" | "ID" => value.is_string(),
                    "Int" => value.is_i64() || value.is_u64(),
                    "Float" => value.is_number(),
                    "Boolean" => value.is_boolean(),
                    _ => true, // custom scalars (DateTime, JSON, …) are opaque
                };
                if ok {
                    Ok(())
                } else {
                    Err(format!("{at}: {value} is not a {name}"))
                }
            }
            Some(ExtendedType::Enum(e)) => match value.as_str() {
                Some(v) if e.values.keys().any(|k| k.as_str() == v) => Ok(()),
                _ => Err(format!("{at}: {value} is not a value of enum {name}")),
            },
            Some(_) => self.check_selection(document, set, value, at),
            None => Err(format!("{at}: unknown type {name}")),
        }
    }
}

fn select_set(document: &ExecutableDocument, set: &SelectionSet, full: &Value) -> Value {
    match full {
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| select_set(document, set, item))
                .collect(),
        ),
        Value::Object(_) => {
            let mut out = serde_json::Map::new();
            select_into(document, set, full, &mut out);
            Value::Object(out)
        }
        other => other.clone(),
    }
}

fn select_into(
    document: &ExecutableDocument,
    set: &SelectionSet,
    full: &Value,
    out: &mut serde_json::Map<String, Value>,
) {
    for selection in &set.selections {
        match selection {
            Selection::Field(field) => {
                let Some(value) = full.get(field.name.as_str()) else {
                    continue; // check_data reports it missing
                };
                let value = if field.selection_set.selections.is_empty() {
                    value.clone()
                } else {
                    select_set(document, &field.selection_set, value)
                };
                out.insert(field.response_key().to_string(), value);
            }
            Selection::InlineFragment(fragment) => {
                select_into(document, &fragment.selection_set, full, out);
            }
            Selection::FragmentSpread(spread) => {
                if let Some(fragment) = document.fragments.get(&spread.fragment_name) {
                    select_into(document, &fragment.selection_set, full, out);
                }
            }
        }
    }
}

/// Renders an introspection `__schema` object as SDL (types, fields, arguments, input fields
/// with defaults, enums, unions, interfaces, root operation types). Descriptions and
/// deprecations are left out: they do not change what validates.
fn introspection_to_sdl(schema: &Value) -> String {
    let mut out = String::new();
    let root = |key: &str| schema[key]["name"].as_str().map(str::to_owned);
    out.push_str("schema {\n");
    for (op, key) in [
        ("query", "queryType"),
        ("mutation", "mutationType"),
        ("subscription", "subscriptionType"),
    ] {
        if let Some(name) = root(key) {
            let _ = writeln!(out, "  {op}: {name}");
        }
    }
    out.push_str("}\n");
    for ty in schema["types"].as_array().into_iter().flatten() {
        let name = ty["name"].as_str().unwrap_or_default();
        if name.starts_with("__") {
            continue;
        }
        match ty["kind"].as_str().unwrap_or_default() {
            "SCALAR" if !matches!(name, "String" | "Int" | "Float" | "Boolean" | "ID") => {
                let _ = writeln!(out, "scalar {name}");
            }
            "ENUM" => {
                let values: Vec<&str> = list(&ty["enumValues"])
                    .filter_map(|v| v["name"].as_str())
                    .collect();
                let _ = writeln!(out, "enum {name} {{ {} }}", values.join(" "));
            }
            "UNION" => {
                let members: Vec<&str> = list(&ty["possibleTypes"])
                    .filter_map(|v| v["name"].as_str())
                    .collect();
                let _ = writeln!(out, "union {name} = {}", members.join(" | "));
            }
            "INPUT_OBJECT" => {
                let _ = writeln!(out, "input {name} {{");
                for field in list(&ty["inputFields"]) {
                    out.push_str("  ");
                    input_value(&mut out, field);
                    out.push('\n');
                }
                out.push_str("}\n");
            }
            kind @ ("OBJECT" | "INTERFACE") => {
                let keyword = if kind == "OBJECT" {
                    "type"
                } else {
                    "interface"
                };
                let interfaces: Vec<&str> = list(&ty["interfaces"])
                    .filter_map(|v| v["name"].as_str())
                    .collect();
                let _ = write!(out, "{keyword} {name}");
                if !interfaces.is_empty() {
                    let _ = write!(out, " implements {}", interfaces.join(" & "));
                }
                out.push_str(" {\n");
                for field in list(&ty["fields"]) {
                    let _ = write!(out, "  {}", field["name"].as_str().unwrap_or_default());
                    let args: Vec<&Value> = list(&field["args"]).collect();
                    if !args.is_empty() {
                        out.push('(');
                        for (i, arg) in args.iter().enumerate() {
                            if i > 0 {
                                out.push_str(", ");
                            }
                            input_value(&mut out, arg);
                        }
                        out.push(')');
                    }
                    let _ = writeln!(out, ": {}", type_ref(&field["type"]));
                }
                out.push_str("}\n");
            }
            _ => {}
        }
    }
    out
}

fn list(value: &Value) -> impl Iterator<Item = &Value> {
    value.as_array().into_iter().flatten()
}

fn input_value(out: &mut String, value: &Value) {
    let _ = write!(
        out,
        "{}: {}",
        value["name"].as_str().unwrap_or_default(),
        type_ref(&value["type"])
    );
    if let Some(default) = value["defaultValue"].as_str() {
        let _ = write!(out, " = {default}");
    }
}

fn type_ref(ty: &Value) -> String {
    match ty["kind"].as_str() {
        Some("NON_NULL") => format!("{}!", type_ref(&ty["ofType"])),
        Some("LIST") => format!("[{}]", type_ref(&ty["ofType"])),
        _ => ty["name"].as_str().unwrap_or_default().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_operations_validate_and_typos_do_not() {
        let schema = railway_schema();
        schema
            .validate("query { projectToken { projectId environmentId } }")
            .unwrap();
        let err = schema
            .validate("mutation { deploymentRollback(id: \"x\") { id status } }")
            .unwrap_err();
        assert!(err.contains("deploymentRollback"), "{err}");
        let err = schema
            .validate("query { deployment(id: \"x\") { id statuz } }")
            .unwrap_err();
        assert!(err.contains("statuz"), "{err}");
    }

    #[test]
    fn response_data_is_checked_against_the_selection() {
        let schema = railway_schema();
        let doc = schema
            .validate("query Q($id: String!) { deployment(id: $id) { id status canRollback } }")
            .unwrap();
        let good = serde_json::json!({"deployment": {"id": "d1", "status": "SUCCESS", "canRollback": true}});
        schema.check_data(&doc, Some("Q"), &good).unwrap();
        for bad in [
            serde_json::json!({"deployment": {"id": "d1", "status": "DONE", "canRollback": true}}),
            serde_json::json!({"deployment": {"id": "d1", "status": "SUCCESS"}}),
            serde_json::json!({"deployment": {"id": "d1", "status": "SUCCESS", "canRollback": "yes"}}),
            serde_json::json!({"deployment": {"id": "d1", "status": "SUCCESS", "canRollback": true, "extra": 1}}),
            serde_json::json!({"deployment": null}),
        ] {
            assert!(schema.check_data(&doc, Some("Q"), &bad).is_err(), "{bad}");
        }
    }
}
