//! A real browser for the status page: Debian's headless `chromium`, driven
//! over the Chrome DevTools Protocol (one WebSocket to the browser, one
//! flattened session on one page). Enough to load a page, read its DOM with
//! JavaScript, resize it like a phone, watch its requests and screenshot it.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use tungstenite::{Message, WebSocket};

/// How long one protocol call may take before the test fails.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// A headless Chromium with one page open; killed when dropped.
#[derive(Debug)]
pub struct Browser {
    child: Child,
    socket: WebSocket<TcpStream>,
    session: String,
    next_id: u64,
    /// Every event the page sent so far (method and params), in order.
    pub events: Vec<Value>,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts `chromium` headless with a fresh profile and opens a blank page.
    pub fn start() -> Self {
        let profile = tempfile::tempdir().expect("temp dir");
        let child = Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-extensions",
                "--disable-sync",
                "--remote-debugging-port=0",
                "--window-size=1280,900",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromium (scripts/setup installs it)");
        // Chromium writes its port and the browser's WebSocket path here.
        let active = profile.path().join("DevToolsActivePort");
        let (port, path) = crate::wait_until(
            "chromium to write DevToolsActivePort",
            Duration::from_secs(60),
            || {
                let text = std::fs::read_to_string(&active).map_err(|e| e.to_string())?;
                let mut lines = text.lines();
                match (lines.next(), lines.next()) {
                    (Some(port), Some(path)) => {
                        Ok((port.trim().to_string(), path.trim().to_string()))
                    }
                    _ => Err(format!("incomplete: {text:?}")),
                }
            },
        );
        let stream = TcpStream::connect(format!("127.0.0.1:{port}")).expect("connect to chromium");
        stream
            .set_read_timeout(Some(CALL_TIMEOUT))
            .expect("read timeout");
        let (socket, _) = tungstenite::client(format!("ws://127.0.0.1:{port}{path}"), stream)
            .expect("WebSocket handshake with chromium");
        let mut browser = Self {
            child,
            socket,
            session: String::new(),
            next_id: 0,
            events: Vec::new(),
            _profile: profile,
        };
        let target = browser.browser_call("Target.createTarget", json!({"url": "about:blank"}));
        let target_id = target["targetId"].as_str().expect("targetId").to_string();
        let attached = browser.browser_call(
            "Target.attachToTarget",
            json!({"targetId": target_id, "flatten": true}),
        );
        browser.session = attached["sessionId"]
            .as_str()
            .expect("sessionId")
            .to_string();
        browser.call("Page.enable", json!({}));
        browser.call("Network.enable", json!({}));
        browser
    }

    fn send(&mut self, method: &str, params: Value, session: Option<&str>) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method});
        message["params"] = params;
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        self.socket
            .send(Message::text(message.to_string()))
            .unwrap_or_else(|e| panic!("send {method} to chromium: {e}"));
        let deadline = Instant::now() + CALL_TIMEOUT;
        loop {
            assert!(
                Instant::now() < deadline,
                "chromium did not answer {method} within {CALL_TIMEOUT:?}"
            );
            let message = self
                .socket
                .read()
                .unwrap_or_else(|e| panic!("read chromium's answer to {method}: {e}"));
            let Message::Text(text) = message else {
                continue;
            };
            let value: Value = serde_json::from_str(text.as_str()).expect("chromium sends JSON");
            if value["id"] == json!(id) {
                if let Some(error) = value.get("error") {
                    panic!("{method} failed in chromium: {error}");
                }
                return value["result"].clone();
            }
            if value.get("method").is_some() {
                self.events.push(value);
            }
        }
    }

    fn browser_call(&mut self, method: &str, params: Value) -> Value {
        self.send(method, params, None)
    }

    /// One protocol call on the page's session; its result.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let session = self.session.clone();
        self.send(method, params, Some(&session))
    }

    /// Loads `url` and waits for its load event.
    pub fn navigate(&mut self, url: &str) {
        let before = self.events.len();
        self.call("Page.navigate", json!({"url": url}));
        let deadline = Instant::now() + CALL_TIMEOUT;
        while !self.events[before..]
            .iter()
            .any(|e| e["method"] == "Page.loadEventFired")
        {
            assert!(
                Instant::now() < deadline,
                "{url} did not load within {CALL_TIMEOUT:?}"
            );
            // Any cheap call reads the events that arrived meanwhile.
            self.evaluate("1");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs `expression` in the page; its value as JSON.
    pub fn evaluate(&mut self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true}),
        );
        if let Some(exception) = result.get("exceptionDetails") {
            panic!("{expression} threw in the page: {exception}");
        }
        result["result"]["value"].clone()
    }

    /// Lays the page out like a phone (`width` CSS pixels, mobile) or, with
    /// `None`, like the desktop window again.
    pub fn emulate_phone(&mut self, width: Option<u32>) {
        match width {
            Some(width) => {
                self.call(
                    "Emulation.setDeviceMetricsOverride",
                    json!({"width": width, "height": 844, "deviceScaleFactor": 2, "mobile": true}),
                );
            }
            None => {
                self.call("Emulation.clearDeviceMetricsOverride", json!({}));
            }
        }
    }

    /// Saves a PNG of the whole page (not only the window) to `path`.
    pub fn screenshot(&mut self, path: &Path) {
        let shot = self.call(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true}),
        );
        let data = shot["data"].as_str().expect("screenshot data");
        let png = base64::engine::general_purpose::STANDARD
            .decode(data)
            .expect("screenshot is base64");
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("artifact dir");
        }
        std::fs::write(path, png).expect("write screenshot");
    }

    /// Every URL the page requested so far.
    pub fn requested_urls(&mut self) -> Vec<String> {
        self.evaluate("1");
        self.events
            .iter()
            .filter(|e| e["method"] == "Network.requestWillBeSent")
            .filter_map(|e| e["params"]["request"]["url"].as_str().map(str::to_string))
            .collect()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where tests keep what a person may want to look at after a run
/// (screenshots): `target/test-artifacts/`.
pub fn artifact_path(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::repo_path("target"));
    target.join("test-artifacts").join(name)
}
