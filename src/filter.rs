//! The proxy-wasm glue: a root context per filter configuration and a small state machine per
//! request (headers → body → callout → reply). Decisions are made by the pure core; every host
//! call goes through `host`, which cannot panic.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};

use crate::body::{self, BodyKind, Fields};
use crate::config::{OnExceed, Settings};
use crate::email;
use crate::host::{self, SharedData};
use crate::limit::{self, Decision, Limiter};
use crate::outcome::Outcome;
use crate::provider::{self, ClientMeta, ProviderAnswer};
use crate::reply::{self, Rejection, Reply};
use crate::request::ResetRequest;

/// How long a paused request may wait for its first body bytes before the filter concludes that
/// Envoy will never deliver them (`allow_on_headers_stop_iteration` is not set).
const FIRST_BODY_DEADLINE_NS: u64 = 800_000_000;
const TICK: Duration = Duration::from_millis(200);
const TIMER_SLACK_NS: u64 = 20_000_000;

pub fn install() {
    // A second call (never made) would fail harmlessly; the logger is static.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(log::LevelFilter::Info);
    proxy_wasm::set_root_context(|context_id| Box::new(Gate::new(context_id)));
}

struct HostLogger;
static LOGGER: HostLogger = HostLogger;

impl log::Log for HostLogger {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, record: &log::Record) {
        let level = match record.level() {
            log::Level::Error => host::LOG_ERROR,
            log::Level::Warn => host::LOG_WARN,
            log::Level::Info => host::LOG_INFO,
            _ => host::LOG_DEBUG,
        };
        host::log(level, &record.args().to_string());
    }
    fn flush(&self) {}
}

/// Counter ids, defined once per configuration. `None` where Envoy refused to define one.
struct Metrics {
    intercepted: Option<u32>,
    forwarded: Option<u32>,
    outcomes: Vec<Option<u32>>,
}

impl Metrics {
    fn define(prefix: &str) -> Metrics {
        let define = |name: &str| {
            let full = format!("{prefix}.{name}");
            host::define_counter(&full)
                .map_err(|e| log::warn!("reset-gate: cannot define counter {full}: {e}"))
                .ok()
        };
        Metrics {
            intercepted: define("intercepted"),
            forwarded: define("forwarded"),
            outcomes: Outcome::ALL.iter().map(|o| define(o.name())).collect(),
        }
    }

    fn bump(id: Option<u32>) {
        if let Some(id) = id {
            // A counter that cannot move is not worth failing a request for.
            let _ = host::increment(id);
        }
    }

    fn outcome(&self, o: Outcome) {
        Metrics::bump(self.outcomes.get(o.index()).copied().flatten());
    }
}

/// Everything a request needs from its configuration, built once in `on_configure`.
struct Compiled {
    settings: Settings,
    metrics: Metrics,
    per_email: Option<Limiter>,
    per_ip: Option<Limiter>,
}

/// A request paused for its body: (context id, deadline in ns, whether it has been answered).
type Waiting = (u32, u64, Rc<Cell<bool>>);

/// State shared by the root context and the requests of one worker (one VM, one thread).
#[derive(Default)]
struct Watch {
    /// Set once any paused request has received body bytes: Envoy delivers bodies here.
    body_seen: Cell<bool>,
    /// Requests paused for their body: (context id, deadline, replied flag).
    waiting: RefCell<Vec<Waiting>>,
}

impl Watch {
    fn forget(&self, context_id: u32) {
        self.waiting
            .borrow_mut()
            .retain(|(id, _, _)| *id != context_id);
    }
}

struct Gate {
    context_id: u32,
    compiled: Option<Rc<Compiled>>,
    watch: Rc<Watch>,
}

impl Gate {
    fn new(context_id: u32) -> Gate {
        Gate {
            context_id,
            compiled: None,
            watch: Rc::new(Watch::default()),
        }
    }

    fn configure(&self, size: usize) -> Result<Compiled, String> {
        let bytes = host::buffer(host::PLUGIN_CONFIGURATION, 0, size)
            .map_err(|e| format!("cannot read the plugin configuration: {e}"))?;
        let settings = Settings::from_json(&bytes).map_err(|e| e.to_string())?;
        let plugin = host::property(&["plugin_name"])
            .ok()
            .flatten()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        // Counters of two configurations in one VM (same `vm_id`) must not mix: the namespace is
        // the plugin's name plus a fingerprint of its configuration.
        let namespace = format!(
            "{plugin}/{:016x}",
            limit::fingerprint(&String::from_utf8_lossy(&bytes))
        );
        let limiter = |table: &str, w: Option<limit::Window>| -> Result<Option<Limiter>, String> {
            let Some(w) = w else { return Ok(None) };
            let l = Limiter::new(&namespace, table, settings.limits.slots, w);
            l.prepare(&SharedData)
                .map_err(|e| format!("cannot prepare the {table} rate-limit table: {}", e.0))?;
            Ok(Some(l))
        };
        let per_email = limiter("email", settings.limits.per_email)?;
        let per_ip = limiter("ip", settings.limits.per_ip)?;
        Ok(Compiled {
            metrics: Metrics::define(&settings.stat_prefix),
            settings,
            per_email,
            per_ip,
        })
    }
}

impl Context for Gate {}

impl RootContext for Gate {
    fn on_configure(&mut self, size: usize) -> bool {
        match self.configure(size) {
            Ok(c) => {
                if let Err(e) = host::set_tick_period(TICK) {
                    log::warn!("reset-gate: cannot set the tick period ({e}); a missing allow_on_headers_stop_iteration will not be detected");
                }
                log::info!(
                    "reset-gate: configured for {} with provider cluster `{}`",
                    c.settings.paths.join(", "),
                    c.settings.provider.cluster
                );
                self.compiled = Some(Rc::new(c));
                true
            }
            Err(e) => {
                log::error!("reset-gate: configuration refused: {e}");
                false
            }
        }
    }

    fn on_tick(&mut self) {
        let Ok(now) = host::now_nanos() else { return };
        let expired: Vec<(u32, Rc<Cell<bool>>)> = {
            let mut waiting = self.watch.waiting.borrow_mut();
            let (gone, keep): (Vec<_>, Vec<_>) = waiting.drain(..).partition(|(_, d, _)| *d <= now);
            *waiting = keep;
            gone.into_iter()
                .map(|(id, _, replied)| (id, replied))
                .collect()
        };
        if expired.is_empty() || self.watch.body_seen.get() {
            // Once bodies are known to arrive, a quiet client is just slow: Envoy's own
            // request timeouts apply.
            return;
        }
        let Some(compiled) = &self.compiled else {
            return;
        };
        for (id, replied) in expired {
            if replied.replace(true) {
                continue;
            }
            log::error!(
                "reset-gate: outcome=misconfigured status=500: no request body arrived within {} ms \
                 of the headers. Envoy holds the body back unless the filter's PluginConfig sets \
                 `allow_on_headers_stop_iteration: true`; add it to the wasm filter's config.",
                FIRST_BODY_DEADLINE_NS / 1_000_000
            );
            if host::set_effective_context(id).is_ok() {
                let reply = Rejection::misconfigured().into_reply();
                if let Err(e) = host::send_response(reply.status, &reply.headers, &reply.body) {
                    log::warn!("reset-gate: cannot send the reply: {e}");
                }
                compiled.metrics.outcome(Outcome::Misconfigured);
            }
            let _ = host::set_effective_context(self.context_id);
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        // The SDK panics on `None`, so a context is always returned; without a configuration it
        // lets everything through.
        Some(Box::new(Stream {
            context_id,
            compiled: self.compiled.clone(),
            watch: self.watch.clone(),
            state: State::PassThrough,
            kind: BodyKind::Json,
            body_size: 0,
            meta: ClientMeta::default(),
            sent_at: 0,
            answered_by_tick: None,
            connection: None,
            email: None,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not a reset request (or not configured): nothing is read or held.
    PassThrough,
    /// Headers held, body being buffered by Envoy.
    ReadingBody,
    /// Callout sent, waiting for the provider.
    AwaitingProvider,
    /// A reply has been sent.
    Done,
}

struct Stream {
    context_id: u32,
    compiled: Option<Rc<Compiled>>,
    watch: Rc<Watch>,
    state: State,
    kind: BodyKind,
    body_size: usize,
    meta: ClientMeta,
    /// When the callout was sent (ns).
    sent_at: u64,
    /// Shared with the watch list while the request waits for its body; set when the tick answers.
    answered_by_tick: Option<Rc<Cell<bool>>>,
    connection: Option<String>,
    /// Redacted.
    email: Option<String>,
}

impl Stream {
    fn header(name: &str) -> Option<String> {
        host::header(host::REQUEST_HEADERS, name).ok().flatten()
    }

    /// Sends a reply, writes the request's one log line and moves its counter.
    fn finish(&mut self, compiled: &Compiled, reply: Reply, outcome: Outcome) {
        self.state = State::Done;
        self.watch.forget(self.context_id);
        if self
            .answered_by_tick
            .as_ref()
            .is_some_and(|a| a.replace(true))
        {
            return;
        }
        if let Err(e) = host::send_response(reply.status, &reply.headers, &reply.body) {
            log::warn!("reset-gate: cannot send the reply: {e}");
        }
        compiled.metrics.outcome(outcome);
        log::info!(
            "reset-gate: outcome={} status={} connection={} email={} client={} request_id={}",
            outcome.name(),
            reply.status,
            self.connection.as_deref().unwrap_or("-"),
            self.email.as_deref().unwrap_or("-"),
            self.meta.address.as_deref().unwrap_or("-"),
            self.meta.request_id.as_deref().unwrap_or("-"),
        );
    }

    fn reject(&mut self, compiled: &Compiled, r: Rejection) -> Action {
        let outcome = r.outcome;
        self.finish(compiled, r.into_reply(), outcome);
        Action::Pause
    }

    fn on_headers(&mut self, compiled: &Compiled, end_of_stream: bool) -> Action {
        let settings = &compiled.settings;
        match Self::header(":path") {
            Some(path) if settings.is_reset_path(&path) => {}
            _ => return Action::Continue,
        }
        let method = Self::header(":method").unwrap_or_default();
        if method == "OPTIONS" {
            // Preflights belong to Envoy's CORS filter, placed before this one.
            return Action::Continue;
        }
        Metrics::bump(compiled.metrics.intercepted);
        self.meta = ClientMeta {
            auth0_client: Self::header("auth0-client"),
            user_agent: Self::header("user-agent"),
            request_id: Self::header("x-request-id"),
            address: host::property(&["source", "address"])
                .ok()
                .flatten()
                .map(|a| provider::address_without_port(&String::from_utf8_lossy(&a)).to_string()),
        };
        if method != "POST" {
            return self.reject(compiled, Rejection::method_not_allowed());
        }
        self.kind = match body::body_kind(Self::header("content-type").as_deref()) {
            Ok(k) => k,
            Err(r) => return self.reject(compiled, r),
        };
        let max = settings.limits.max_body_bytes;
        if let Some(len) = Self::header("content-length") {
            if len.trim().parse::<u64>().map_or(true, |n| n > max as u64) {
                return self.reject(compiled, Rejection::too_large(max));
            }
        }
        if end_of_stream {
            return self.reject(
                compiled,
                Rejection::invalid(
                    "The request has no body: send the email field as JSON or a form.",
                ),
            );
        }
        self.state = State::ReadingBody;
        if !self.watch.body_seen.get() {
            if let Ok(now) = host::now_nanos() {
                let answered = Rc::new(Cell::new(false));
                self.answered_by_tick = Some(answered.clone());
                self.watch.waiting.borrow_mut().push((
                    self.context_id,
                    now + FIRST_BODY_DEADLINE_NS,
                    answered,
                ));
            }
        }
        Action::Pause
    }

    fn on_body(&mut self, compiled: &Compiled, body_size: usize, end_of_stream: bool) -> Action {
        self.watch.body_seen.set(true);
        self.watch.forget(self.context_id);
        self.body_size = body_size;
        let max = compiled.settings.limits.max_body_bytes;
        if body_size > max {
            return self.reject(compiled, Rejection::too_large(max));
        }
        if !end_of_stream {
            return Action::Pause;
        }
        self.process(compiled)
    }

    /// The whole body is in: decide, then call the provider or answer.
    fn process(&mut self, compiled: &Compiled) -> Action {
        let settings = &compiled.settings;
        let bytes = match host::buffer(host::REQUEST_BODY, 0, self.body_size) {
            Ok(b) => b,
            Err(e) => {
                log::warn!("reset-gate: cannot read the request body: {e}");
                return self.reject(
                    compiled,
                    Rejection::unavailable(503, Outcome::DispatchFailed),
                );
            }
        };
        let fields = match body::parse(self.kind, &bytes) {
            Ok(f) => f,
            Err(r) => return self.reject(compiled, r),
        };
        let request = match ResetRequest::from_fields(&fields, settings) {
            Ok(r) => r,
            Err(r) => {
                self.note_refused(&fields, settings);
                return self.reject(compiled, r);
            }
        };
        self.email = Some(email::redact(&request.email));
        self.connection = Some(request.connection.clone());

        if let Some(r) = self.over_limit(compiled, &request) {
            return match settings.limits.on_exceed {
                OnExceed::Reject => self.reject(compiled, r),
                OnExceed::Silent => {
                    self.finish(
                        compiled,
                        reply::silent_success(),
                        Outcome::RateLimitedSilent,
                    );
                    Action::Pause
                }
            };
        }

        let call = provider::callout(&request, &settings.provider, &self.meta);
        let timeout = Duration::from_millis(u64::from(settings.provider.timeout_ms));
        match host::dispatch_http_call(
            &settings.provider.cluster,
            &call.headers,
            &call.body,
            timeout,
        ) {
            Ok(_) => {
                self.sent_at = host::now_nanos().unwrap_or(0);
                self.state = State::AwaitingProvider;
                Metrics::bump(compiled.metrics.forwarded);
                Action::Pause
            }
            Err(e) => {
                log::error!(
                    "reset-gate: Envoy refused the callout to cluster `{}` ({e}); is the cluster defined?",
                    settings.provider.cluster
                );
                self.reject(
                    compiled,
                    Rejection::unavailable(503, Outcome::DispatchFailed),
                )
            }
        }
    }

    /// What the log line says of a request a field rule refused: the email and connection as far
    /// as they are valid on their own. Only refusals pay for this second look.
    fn note_refused(&mut self, fields: &Fields, settings: &Settings) {
        self.email = fields
            .email
            .as_deref()
            .or(fields.username.as_deref())
            .and_then(|e| email::normalise(e, "email").ok())
            .map(|e| email::redact(&e));
        let requested = fields.connection.as_deref().map(str::trim);
        self.connection = Some(match settings.connections.resolve(requested) {
            Ok(c) => c.to_string(),
            Err(_) => loggable(requested.unwrap_or("-")),
        });
    }

    /// Counts the request against each configured limit; the first one exceeded refuses it.
    fn over_limit(&self, compiled: &Compiled, request: &ResetRequest) -> Option<Rejection> {
        let now = host::now_nanos().ok()? / 1_000_000_000;
        // Mailboxes are matched without regard to case by the provider, so the per-email key is
        // lower-cased whole: `Jane@` and `jane@` must not each get their own allowance.
        let email_key = crate::case::lowercase(&request.email);
        let checks = [
            (&compiled.per_ip, self.meta.address.as_deref()),
            (&compiled.per_email, Some(email_key.as_str())),
        ];
        for (limiter, key) in checks {
            let (Some(limiter), Some(key)) = (limiter, key) else {
                continue;
            };
            match limiter.check(&SharedData, key, now) {
                Ok(Decision::Admit) => {}
                Ok(Decision::Deny { retry_after }) => {
                    return Some(Rejection::too_many_requests(retry_after))
                }
                // The store failing must not take password resets down with it.
                Err(e) => log::warn!("reset-gate: rate limit not applied: {}", e.0),
            }
        }
        None
    }

    fn on_answer(&mut self, compiled: &Compiled, num_headers: usize, body_size: usize) {
        let headers = if num_headers == 0 {
            Vec::new()
        } else {
            host::headers(host::HTTP_CALL_RESPONSE_HEADERS).unwrap_or_default()
        };
        let status = headers
            .iter()
            .find(|(k, _)| k == ":status")
            .and_then(|(_, v)| v.parse::<u16>().ok());
        let body = if status.is_some() && body_size <= provider::MAX_ANSWER_BYTES {
            host::buffer(host::HTTP_CALL_RESPONSE_BODY, 0, body_size).unwrap_or_default()
        } else {
            Vec::new()
        };
        // Envoy's timer may fire a hair before the full timeout by our clock.
        let elapsed = host::now_nanos().unwrap_or(0).saturating_sub(self.sent_at) + TIMER_SLACK_NS;
        let answer = ProviderAnswer {
            status,
            headers,
            body,
            body_size,
            timed_out: elapsed >= u64::from(compiled.settings.provider.timeout_ms) * 1_000_000,
        };
        let (reply, outcome) = provider::map_answer(answer);
        self.finish(compiled, reply, outcome);
    }
}

/// A client-sent name made safe for a `key=value` log line (control characters were refused
/// when the body was read).
fn loggable(name: &str) -> String {
    name.chars()
        .take(64)
        .map(|c| {
            if c.is_whitespace() || c == '=' {
                '_'
            } else {
                c
            }
        })
        .collect()
}

impl Context for Stream {
    fn on_http_call_response(
        &mut self,
        _token_id: u32,
        num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        if self.state != State::AwaitingProvider {
            return;
        }
        if let Some(compiled) = self.compiled.clone() {
            self.on_answer(&compiled, num_headers, body_size);
        }
    }

    fn on_done(&mut self) -> bool {
        self.watch.forget(self.context_id);
        true
    }
}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        match self.compiled.clone() {
            Some(compiled) => self.on_headers(&compiled, end_of_stream),
            None => Action::Continue,
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        match (self.state, self.compiled.clone()) {
            (State::PassThrough, _) | (_, None) => Action::Continue,
            (State::ReadingBody, Some(compiled)) => {
                self.on_body(&compiled, body_size, end_of_stream)
            }
            _ => Action::Pause,
        }
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        // HTTP/2 requests with trailers end here, never with `end_of_stream` on a body chunk.
        match (self.state, self.compiled.clone()) {
            (State::PassThrough, _) | (_, None) => Action::Continue,
            (State::ReadingBody, Some(compiled)) => self.process(&compiled),
            _ => Action::Pause,
        }
    }
}
