//! What the pipeline's integration tests share: a plan of `demo` to production with one
//! target, automatic rollback, no smoke gate and the test process as owner; each test changes
//! what it is about with struct update syntax.

use std::time::Duration;

use shipgate_core::{ImageRef, Redactor, ServiceName};
use shipgate_pipeline::{Plan, Target};

/// A plan of `demo`'s `images` tagged `image_tag` to production through `target`, whose
/// waits last `timeout` (the lock wait too).
pub(crate) fn plan(
    run_id: String,
    image_tag: &str,
    images: Vec<(ServiceName, ImageRef)>,
    target: Target,
    timeout: Duration,
) -> Plan {
    Plan {
        run_id,
        app: "demo".into(),
        environment: "production".into(),
        image_tag: image_tag.into(),
        images,
        targets: vec![target],
        smoke: None,
        preflight: Vec::new(),
        ci_gate: None,
        migration: None,
        redactor: Redactor::default(),
        auto_rollback: true,
        smoke_after_rollback: true,
        image_check: None,
        owner: "tests".into(),
        host: "localhost".into(),
        pid: i64::from(std::process::id()),
        lock_timeout: timeout,
        lock_ttl: Duration::from_secs(30),
        commit_ms: None,
        allow_older: false,
        strategy: shipgate_pipeline::Strategy::Rolling,
        canary: shipgate_pipeline::Canary::default(),
        links: Vec::new(),
    }
}
