//! Fly's Machines API description (`specs/fly/machines-openapi3.json`, from superfly/docs; see
//! `specs/fly/SOURCE.md`) as a strict checker of requests and answers.
//!
//! The operation is looked up by method and path template; query parameters must be declared;
//! bodies are checked against the schema recursively (`$ref`, `allOf`, object properties,
//! arrays, scalar types, enums, `required`). Objects are checked strictly: a property the
//! schema does not declare is an error unless the schema allows additional properties, so a
//! misspelt field in a client or a fake is caught.
//!
//! One documented gap between the description and the real API is applied: the lease
//! endpoints answer `{"status": "success", "data": <Lease>}`, so their `data` is checked
//! against the described `Lease` (`shared/notes/fly.md` §3.5).

use std::sync::OnceLock;

use serde_json::Value;

/// The Machines API description.
#[derive(Debug)]
pub struct FlySpec {
    spec: Value,
}

/// The description, loaded once per process.
pub fn fly_spec() -> &'static FlySpec {
    static SPEC: OnceLock<FlySpec> = OnceLock::new();
    SPEC.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/specs/fly/machines-openapi3.json"
        );
        FlySpec {
            spec: serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap(),
        }
    })
}

impl FlySpec {
    fn operation(&self, method: &str, template: &str) -> Result<&Value, String> {
        let op = &self.spec["paths"][template][method.to_ascii_lowercase()];
        if op.is_null() {
            Err(format!("{method} {template} is not in the Machines API"))
        } else {
            Ok(op)
        }
    }

    /// Checks a request: the operation exists, every query parameter is declared, and the
    /// JSON body (if any) fits the request body schema.
    pub fn check_request(
        &self,
        method: &str,
        template: &str,
        query: &[(String, String)],
        body: Option<&Value>,
    ) -> Result<(), String> {
        let op = self.operation(method, template)?;
        let params: Vec<&str> = op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == "query")
            .filter_map(|p| p["name"].as_str())
            .collect();
        for (key, _) in query {
            let declared = params.iter().any(|p| {
                p == key
                    || p.strip_suffix("{key}")
                        .is_some_and(|prefix| key.starts_with(prefix))
            });
            if !declared {
                return Err(format!(
                    "{method} {template}: undeclared query parameter `{key}`"
                ));
            }
        }
        let schema = &op["requestBody"]["content"]["application/json"]["schema"];
        match (body, schema.is_null()) {
            (Some(body), false) => self.check(schema, body, &format!("{method} {template} body")),
            (Some(_), true) => Err(format!("{method} {template} takes no body")),
            (None, _) => Ok(()),
        }
    }

    /// Checks an answer: the status is one the operation declares and the body fits its schema.
    pub fn check_response(
        &self,
        method: &str,
        template: &str,
        status: u16,
        body: &Value,
    ) -> Result<(), String> {
        let op = self.operation(method, template)?;
        let response = &op["responses"][status.to_string()];
        if response.is_null() {
            return Err(format!(
                "{method} {template}: status {status} is not declared"
            ));
        }
        let schema = &response["content"]["application/json"]["schema"];
        if schema.is_null() {
            return Ok(());
        }
        let at = format!("{method} {template} → {status}");
        if template.ends_with("/lease") && body.get("data").is_some() {
            return self.check(schema, &body["data"], &at);
        }
        self.check(schema, body, &at)
    }

    fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        match schema["$ref"].as_str() {
            Some(reference) => {
                let name = reference.trim_start_matches("#/components/schemas/");
                self.resolve(&self.spec["components"]["schemas"][name])
            }
            None => schema,
        }
    }

    /// Checks `value` against `schema`.
    pub fn check(&self, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
        let schema = self.resolve(schema);
        if let Some(all) = schema["allOf"].as_array() {
            for part in all {
                self.check(part, value, at)?;
            }
            return Ok(());
        }
        if value.is_null() {
            return Ok(()); // the description marks nothing as non-nullable
        }
        let kind = schema["type"].as_str();
        match kind {
            Some("string") => {
                let Some(text) = value.as_str() else {
                    return Err(format!("{at}: {value} is not a string"));
                };
                if let Some(allowed) = schema["enum"].as_array()
                    && !allowed.iter().any(|a| a == text)
                {
                    return Err(format!("{at}: `{text}` is not one of {allowed:?}"));
                }
                Ok(())
            }
            Some("integer") if !(value.is_i64() || value.is_u64()) => {
                Err(format!("{at}: {value} is not an integer"))
            }
            Some("number") if !value.is_number() => Err(format!("{at}: {value} is not a number")),
            Some("boolean") if !value.is_boolean() => {
                Err(format!("{at}: {value} is not a boolean"))
            }
            Some("array") => {
                let Some(items) = value.as_array() else {
                    return Err(format!("{at}: {value} is not an array"));
                };
                for (i, item) in items.iter().enumerate() {
                    self.check(&schema["items"], item, &format!("{at}[{i}]"))?;
                }
                Ok(())
            }
            Some("object") | None if schema.get("properties").is_some() => {
                let Some(object) = value.as_object() else {
                    return Err(format!("{at}: {value} is not an object"));
                };
                for required in schema["required"].as_array().into_iter().flatten() {
                    let name = required.as_str().unwrap_or_default();
                    if !object.contains_key(name) {
                        return Err(format!("{at}: required `{name}` is missing"));
                    }
                }
                for (key, item) in object {
                    let property = &schema["properties"][key];
                    if property.is_null() {
                        match &schema["additionalProperties"] {
                            Value::Null | Value::Bool(false) => {
                                return Err(format!("{at}: `{key}` is not a declared property"));
                            }
                            extra => self.check(extra, item, &format!("{at}.{key}"))?,
                        }
                    } else {
                        self.check(property, item, &format!("{at}.{key}"))?;
                    }
                }
                Ok(())
            }
            Some("object") if !value.is_object() => Err(format!("{at}: {value} is not an object")),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn update_requests_and_machines_are_checked_strictly() {
        let spec = fly_spec();
        let update = "/v1/apps/{app_name}/machines/{machine_id}";
        spec.check_request(
            "POST",
            update,
            &[],
            Some(&json!({"config": {"image": "x"}, "current_version": "01J", "min_secrets_version": 3})),
        )
        .unwrap();
        let err = spec
            .check_request(
                "POST",
                update,
                &[],
                Some(&json!({"config": {}, "currentVersion": "01J"})),
            )
            .unwrap_err();
        assert!(err.contains("currentVersion"), "{err}");
        let err = spec
            .check_request(
                "POST",
                update,
                &[],
                Some(&json!({"config": {"imgae": "x"}})),
            )
            .unwrap_err();
        assert!(err.contains("imgae"), "{err}");
        let err = spec
            .check_request(
                "GET",
                "/v1/apps/{app_name}/machines",
                &[
                    ("metadata.fly_process_group".into(), "app".into()),
                    ("limt".into(), "1".into()),
                ],
                None,
            )
            .unwrap_err();
        assert!(err.contains("limt"), "{err}");
        spec.check_response("GET", update, 200, &json!({"id": "m1", "state": "started", "version": "01J", "checks": [{"name": "http", "status": "passing"}]}))
            .unwrap();
        let err = spec
            .check_response(
                "GET",
                update,
                200,
                &json!({"id": "m1", "checks": [{"name": "http", "state": "passing"}]}),
            )
            .unwrap_err();
        assert!(err.contains("state"), "{err}");
        assert!(spec.check_response("GET", update, 418, &json!({})).is_err());
    }
}
