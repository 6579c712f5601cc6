//! A real OCI registry on loopback: Debian's `docker-registry` (distribution 2.8) with
//! deletes enabled, and a minimal client to push images and delete manifests through the
//! distribution API (no docker daemon needed). `scripts/test` installs the package.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use sha2::{Digest, Sha256};

/// A running registry; stopped when dropped.
#[derive(Debug)]
pub struct Registry {
    child: Child,
    /// `127.0.0.1:PORT`, the host part of image references.
    pub host: String,
    _dir: tempfile::TempDir,
}

fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

impl Registry {
    /// Starts `docker-registry` (from PATH, or `SHIPGATE_TEST_REGISTRY_BIN`) on a free port and
    /// waits until `/v2/` answers.
    pub fn start() -> Registry {
        let bin = std::env::var("SHIPGATE_TEST_REGISTRY_BIN")
            .unwrap_or_else(|_| "docker-registry".into());
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new(&bin)
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run `{bin}` ({e}): install Debian's docker-registry package (./scripts/test does)"));
        let registry = Registry {
            child,
            host: format!("127.0.0.1:{port}"),
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "docker-registry did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        registry
    }

    /// Pushes a tiny image `name:tag` (one layer, an OCI manifest); returns its digest.
    pub async fn push(&self, name: &str, tag: &str) -> String {
        let http = shipgate_http::build_client(&shipgate_http::ClientOptions::default()).unwrap();
        let base = format!("http://{}/v2/{name}", self.host);
        let config = json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}, "tag": tag}).to_string();
        let layer = format!("layer of {name}:{tag}");
        for blob in [config.as_bytes(), layer.as_bytes()] {
            let start = http
                .post(format!("{base}/blobs/uploads/"))
                .send()
                .await
                .unwrap();
            assert_eq!(start.status().as_u16(), 202, "start upload");
            let location = start.headers()["location"].to_str().unwrap().to_owned();
            let location = if location.starts_with("http") {
                location
            } else {
                format!("http://{}{location}", self.host)
            };
            let sep = if location.contains('?') { '&' } else { '?' };
            let put = http
                .put(format!("{location}{sep}digest={}", digest(blob)))
                .header("content-type", "application/octet-stream")
                .body(blob.to_vec())
                .send()
                .await
                .unwrap();
            assert_eq!(put.status().as_u16(), 201, "upload blob");
        }
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(config.as_bytes()), "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest(layer.as_bytes()), "size": layer.len()}],
        })
        .to_string();
        let put = http
            .put(format!("{base}/manifests/{tag}"))
            .header("content-type", "application/vnd.oci.image.manifest.v1+json")
            .body(manifest.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(
            put.status().as_u16(),
            201,
            "put manifest: {}",
            put.text().await.unwrap_or_default()
        );
        digest(manifest.as_bytes())
    }

    /// Deletes the manifest `digest` of `name` (its tags then answer 404).
    pub async fn delete(&self, name: &str, digest: &str) {
        let response = shipgate_http::build_client(&shipgate_http::ClientOptions::default())
            .unwrap()
            .delete(format!("http://{}/v2/{name}/manifests/{digest}", self.host))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 202, "delete manifest");
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
