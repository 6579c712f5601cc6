//! A real browser for page tests: headless Chromium driven over the Chrome DevTools
//! Protocol, through a small client on its WebSocket. A test loads a page at a given window
//! width and gets what a person's browser would have shown and complained about: console
//! errors, uncaught exceptions, blocked or failed requests (CSP violations included), and can
//! evaluate expressions in the page and take screenshots.
//!
//! Chromium comes from Debian's `chromium` package (`scripts/test` installs it);
//! `SHIPGATE_TEST_CHROMIUM` names another binary.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// How long one protocol call or one page load may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// The Chromium binary: `SHIPGATE_TEST_CHROMIUM`, or `chromium` / `chromium-browser` on
/// the PATH. `None` when there is none.
pub fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("SHIPGATE_TEST_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| [dir.join("chromium"), dir.join("chromium-browser")])
        .find(|candidate| candidate.is_file())
}

/// A running headless Chromium.
pub struct Browser {
    child: tokio::process::Child,
    socket: Socket,
    next_id: u64,
    /// Events read while waiting for a reply, per session.
    events: Vec<Value>,
    _profile: tempfile::TempDir,
}

/// A page loaded in its own tab.
#[derive(Debug, Clone)]
pub struct Page {
    session: String,
    /// Console errors and uncaught exceptions, in order.
    pub console_errors: Vec<String>,
    /// Requests that failed or answered 4xx/5xx (`url: why`).
    pub failed_requests: Vec<String>,
    /// Every response's URL and status.
    pub responses: BTreeMap<String, u16>,
}

impl Browser {
    /// Starts headless Chromium with a fresh profile.
    pub async fn launch() -> Result<Browser, String> {
        let binary = chromium().ok_or("no chromium binary (apt-get install chromium)")?;
        let profile = tempfile::tempdir().map_err(|e| e.to_string())?;
        let mut child = tokio::process::Command::new(&binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--hide-scrollbars",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let mut lines = BufReader::new(stderr).lines();
        let endpoint = tokio::time::timeout(CALL_TIMEOUT, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    return Some(url.trim().to_owned());
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
        .ok_or("chromium did not print its DevTools endpoint")?;
        // Chromium keeps writing to stderr: drain it so it never blocks.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let (socket, _) = tokio_tungstenite::connect_async(endpoint.as_str())
            .await
            .map_err(|e| format!("cannot connect to {endpoint}: {e}"))?;
        Ok(Browser {
            child,
            socket,
            next_id: 0,
            events: Vec::new(),
            _profile: profile,
        })
    }

    /// Sends `method` (to `session`, or the browser) and waits for its reply; events that
    /// arrive meanwhile are kept.
    async fn call(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> Result<Value, String> {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        self.socket
            .send(Message::Text(message.to_string().into()))
            .await
            .map_err(|e| format!("{method}: {e}"))?;
        let wait = async {
            loop {
                let value = self.next_message().await?;
                if value["id"] == json!(id) {
                    if let Some(error) = value.get("error") {
                        return Err(format!("{method}: {error}"));
                    }
                    return Ok(value["result"].clone());
                }
                if value.get("method").is_some() {
                    self.events.push(value);
                }
            }
        };
        tokio::time::timeout(CALL_TIMEOUT, wait)
            .await
            .map_err(|_| format!("{method}: no reply within {CALL_TIMEOUT:?}"))?
    }

    /// The next protocol message (text frames; others are skipped).
    async fn next_message(&mut self) -> Result<Value, String> {
        loop {
            let message = self.socket.next().await.ok_or("the browser went away")?;
            if let Message::Text(text) = message.map_err(|e| e.to_string())? {
                return serde_json::from_str(&text).map_err(|e| e.to_string());
            }
        }
    }

    /// Waits for event `method` of `session` (already received, or coming).
    async fn event(&mut self, session: &str, method: &str) -> Result<Value, String> {
        let matches = |v: &Value| v["method"] == json!(method) && v["sessionId"] == json!(session);
        if let Some(i) = self.events.iter().position(matches) {
            return Ok(self.events.remove(i));
        }
        let wait = async {
            loop {
                let value = self.next_message().await?;
                if matches(&value) {
                    return Ok(value);
                }
                if value.get("method").is_some() {
                    self.events.push(value);
                }
            }
        };
        tokio::time::timeout(CALL_TIMEOUT, wait)
            .await
            .map_err(|_| format!("no {method} within {CALL_TIMEOUT:?}"))?
    }

    /// Opens `url` in a new tab whose window is `width` × `height` CSS pixels (a phone's
    /// layout below 600), waits for its load event, and collects what went wrong.
    pub async fn open(&mut self, url: &str, width: u32, height: u32) -> Result<Page, String> {
        let target = self
            .call(None, "Target.createTarget", json!({ "url": "about:blank" }))
            .await?;
        let attached = self
            .call(
                None,
                "Target.attachToTarget",
                json!({ "targetId": target["targetId"], "flatten": true }),
            )
            .await?;
        let session = attached["sessionId"]
            .as_str()
            .ok_or("no session id")?
            .to_owned();
        let s = Some(session.as_str());
        for domain in [
            "Page.enable",
            "Runtime.enable",
            "Log.enable",
            "Network.enable",
        ] {
            self.call(s, domain, json!({})).await?;
        }
        self.call(
            s,
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600 }),
        )
        .await?;
        let navigated = self.call(s, "Page.navigate", json!({ "url": url })).await?;
        if let Some(error) = navigated.get("errorText").and_then(Value::as_str) {
            return Err(format!("{url}: {error}"));
        }
        self.event(&session, "Page.loadEventFired").await?;
        // Everything sent up to the load event (and the answer to this call) is in.
        self.call(s, "Runtime.evaluate", json!({ "expression": "1" }))
            .await?;
        Ok(self.collect(session))
    }

    /// Takes the page's events out of the buffer and sums them up.
    fn collect(&mut self, session: String) -> Page {
        let mut page = Page {
            session: session.clone(),
            console_errors: Vec::new(),
            failed_requests: Vec::new(),
            responses: BTreeMap::new(),
        };
        let mut urls: BTreeMap<String, String> = BTreeMap::new();
        let events: Vec<Value> = self
            .events
            .iter()
            .filter(|e| e["sessionId"] == json!(session))
            .cloned()
            .collect();
        self.events.retain(|e| e["sessionId"] != json!(session));
        for event in events {
            let params = &event["params"];
            match event["method"].as_str().unwrap_or_default() {
                "Runtime.consoleAPICalled"
                    if matches!(params["type"].as_str(), Some("error" | "assert")) =>
                {
                    let text: Vec<String> = params["args"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|a| {
                            a["value"]
                                .as_str()
                                .map_or_else(|| a["description"].to_string(), str::to_owned)
                        })
                        .collect();
                    page.console_errors.push(text.join(" "));
                }
                "Runtime.exceptionThrown" => page.console_errors.push(format!(
                    "{} {}",
                    params["exceptionDetails"]["text"],
                    params["exceptionDetails"]["exception"]["description"]
                )),
                "Log.entryAdded" if params["entry"]["level"] == json!("error") => {
                    page.console_errors.push(format!(
                        "{} ({})",
                        params["entry"]["text"].as_str().unwrap_or_default(),
                        params["entry"]["url"].as_str().unwrap_or_default()
                    ));
                }
                "Network.requestWillBeSent" => {
                    urls.insert(
                        params["requestId"].as_str().unwrap_or_default().to_owned(),
                        params["request"]["url"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned(),
                    );
                }
                "Network.responseReceived" => {
                    let url = params["response"]["url"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                    let status = u16::try_from(params["response"]["status"].as_u64().unwrap_or(0))
                        .unwrap_or(0);
                    if status >= 400 {
                        page.failed_requests.push(format!("{url}: status {status}"));
                    }
                    page.responses.insert(url, status);
                }
                "Network.loadingFailed" => {
                    let url = urls
                        .get(params["requestId"].as_str().unwrap_or_default())
                        .cloned()
                        .unwrap_or_default();
                    page.failed_requests.push(format!(
                        "{url}: {} {}",
                        params["errorText"].as_str().unwrap_or_default(),
                        params["blockedReason"].as_str().unwrap_or_default()
                    ));
                }
                _ => {}
            }
        }
        page
    }

    /// Evaluates `expression` in the page and returns its value (JSON).
    pub async fn eval(&mut self, page: &Page, expression: &str) -> Result<Value, String> {
        let result = self
            .call(
                Some(&page.session),
                "Runtime.evaluate",
                json!({ "expression": expression, "returnByValue": true }),
            )
            .await?;
        if let Some(details) = result.get("exceptionDetails") {
            return Err(format!("{expression}: {details}"));
        }
        Ok(result["result"]["value"].clone())
    }

    /// A PNG of the whole page (up to 6,000 pixels tall) at the tab's width.
    pub async fn screenshot(&mut self, page: &Page) -> Result<Vec<u8>, String> {
        let metrics = self
            .call(Some(&page.session), "Page.getLayoutMetrics", json!({}))
            .await?;
        let width = metrics["cssLayoutViewport"]["clientWidth"]
            .as_f64()
            .unwrap_or(1280.0);
        let height = metrics["cssContentSize"]["height"]
            .as_f64()
            .unwrap_or(800.0)
            .min(6_000.0);
        let shot = self
            .call(
                Some(&page.session),
                "Page.captureScreenshot",
                json!({
                    "format": "png",
                    "captureBeyondViewport": true,
                    "clip": { "x": 0, "y": 0, "width": width, "height": height, "scale": 1 }
                }),
            )
            .await?;
        base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap_or_default())
            .map_err(|e| e.to_string())
    }

    /// Closes the browser.
    pub async fn close(mut self) {
        let _ = self.call(None, "Browser.close", json!({})).await;
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
        let _ = self.child.kill().await;
    }
}
