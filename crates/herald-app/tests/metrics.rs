//! `/metrics` (issue 13, item 4): the text parses as Prometheus exposition format (strictly,
//! `herald_testkit::prometheus`), its counters move when a campaign runs against the fake
//! provider (in-process, on a manual clock), no label value is a phone number or a recipient id,
//! and the `[metrics] listen` listener serves it over HTTP without a token.
//!
//! One process, one global recorder: the tests compare values before and after, per sender
//! name, so they do not depend on each other's order.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use herald_app::Settings;
use herald_app::metrics::Metrics;
use herald_app::metrics_listener::{CONTENT_TYPE, MetricsListener};
use herald_app::run::{Ending, RunOptions, run_campaign};
use herald_engine::worker::metrics as names;
use herald_engine::{Shutdown, ShutdownSignal};
use herald_store::StoreTime;
use herald_testkit::ManualClock;
use herald_testkit::prometheus::{Sample, parse, sum};
use herald_testkit::provider::{FakeProvider, Match, Reply};

const TOKEN: &str = "metrics-test-token-0123456789";

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// `n` recipients `m0…` with phones `+7 916 9000000…`, a transactional campaign due at 10:00
/// UTC spread over one second (all due at the clock's 10:00:05), and a WhatsApp sender `sender` on the fake provider.
fn project(dir: &Path, n: usize, sender: &str, receiver: &FakeProvider) -> (Settings, Vec<String>) {
    let mut csv = String::from("id,phone,timezone\n");
    let mut phones = Vec::new();
    for i in 0..n {
        writeln!(csv, "m{i},+7 916 {:07},Etc/UTC", 9_000_000 + i).unwrap();
        phones.push(format!("7916{:07}", 9_000_000 + i));
    }
    std::fs::write(dir.join("people.csv"), csv).unwrap();
    std::fs::write(
        dir.join("c.yaml"),
        format!(
            "id: metered\npurpose: transactional\nsender: {sender}\n\
             audience: {{ source: people.csv }}\ntemplate: {{ name: notice, language: en }}\n\
             schedule: {{ at: 2026-11-30T10:00, in: Etc/UTC }}\nspread: 1s\n"
        ),
    )
    .unwrap();
    let config = format!(
        "[store]\nsqlite = \"{}\"\n[senders.{sender}]\nchannel = \"whatsapp\"\n\
         phone_number_id = \"1234567890\"\ntoken_env = \"HERALD_TEST_WA_TOKEN\"\n\
         base_url = \"http://{}\"\nper_second = 100\n[metrics]\nlisten = \"127.0.0.1:0\"\n",
        dir.join("herald.db").display(),
        receiver.addr()
    );
    std::fs::write(dir.join("herald.toml"), config).unwrap();
    let settings = Settings::load(Some(&dir.join("herald.toml")), &BTreeMap::new()).unwrap();
    (settings, phones)
}

fn env() -> BTreeMap<String, String> {
    BTreeMap::from([("HERALD_TEST_WA_TOKEN".to_owned(), TOKEN.to_owned())])
}

fn scrape(metrics: &Metrics) -> Vec<Sample> {
    let text = metrics.render();
    parse(&text).unwrap_or_else(|e| panic!("not Prometheus text: {e}\n{text}"))
}

/// Every label value of every sample: none holds a phone (with or without `+`, in any
/// grouping) nor a recipient id of the audience.
fn assert_no_personal_data(samples: &[Sample], phones: &[String], ids: &[String]) {
    for sample in samples {
        for (label, value) in &sample.labels {
            let digits: String = value.chars().filter(char::is_ascii_digit).collect();
            let phone_like = digits.len() >= 7
                && value
                    .chars()
                    .all(|c| c.is_ascii_digit() || "+ -()".contains(c));
            assert!(
                !phone_like,
                "{}{{{label}={value:?}}} looks like a phone",
                sample.name
            );
            assert!(
                !phones
                    .iter()
                    .any(|p| value.contains(p.as_str())
                        || (digits.len() >= 7 && p.contains(&digits))),
                "{}{{{label}={value:?}}} holds a phone",
                sample.name
            );
            assert!(
                !ids.contains(value),
                "{}{{{label}={value:?}}} is a recipient id",
                sample.name
            );
        }
    }
}

/// A runtime for a test body: the fake provider runs on a runtime of its own, started (and
/// dropped) outside any runtime.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn counters_move_when_a_campaign_runs_and_no_label_is_a_phone() {
    let receiver = FakeProvider::start();
    runtime().block_on(counters_move(&receiver));
}

async fn counters_move(receiver: &FakeProvider) {
    let metrics = Metrics::install().unwrap();
    // The third request is a STOP (131050): it ends failed(131050) and opts the phone out.
    receiver.script(
        Match::Ordinal(2),
        Reply::CloudError {
            status: 400,
            code: 131_050,
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let sender = "metered_wa";
    let (settings, phones) = project(dir.path(), 5, sender, receiver);
    let before = scrape(&metrics);
    let s = [("sender", sender)];
    let delivered = |samples: &[Sample], outcome: &str, reason: &str| {
        sum(
            samples,
            names::DELIVERIES,
            &[("sender", sender), ("outcome", outcome), ("reason", reason)],
        )
    };
    let clock = Arc::new(ManualClock::new(at("2026-11-30T10:00:05Z")));
    let options = RunOptions {
        until_idle: true,
        store_time: StoreTime::Clock(clock.clone()),
    };
    let report = run_campaign(
        &dir.path().join("c.yaml"),
        &settings,
        &env(),
        options,
        clock,
        Shutdown::never(),
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!(report.ending, Ending::Done, "{report:?}");
    assert_eq!(
        (report.counts.sent, report.counts.queued),
        (4, 0),
        "{report:?}"
    );
    assert_eq!(receiver.count(), 5);

    let after = scrape(&metrics);
    let moved = |f: &dyn Fn(&[Sample]) -> f64| f(&after) - f(&before);
    assert_eq!(moved(&|x| delivered(x, "sent", "")), 4.0);
    assert_eq!(moved(&|x| delivered(x, "failed", "131050")), 1.0);
    let answered = |x: &[Sample], result: &str, code: &str| {
        sum(
            x,
            names::PROVIDER_RESPONSES,
            &[("sender", sender), ("result", result), ("code", code)],
        )
    };
    assert_eq!(moved(&|x| answered(x, "accepted", "")), 4.0);
    assert_eq!(moved(&|x| answered(x, "rejected", "131050")), 1.0);
    let count = format!("{}_count", names::SEND_SECONDS);
    assert_eq!(
        moved(&|x| sum(x, &count, &s)),
        5.0,
        "one latency sample per request"
    );
    assert!(
        after.iter().any(|x| x.name == names::QUEUE_DEPTH
            && x.labels.get("sender").map(String::as_str) == Some(sender)),
        "the queue depth is sampled"
    );
    let ids: Vec<String> = (0..5).map(|i| format!("m{i}")).collect();
    assert_no_personal_data(&after, &phones, &ids);
    // Every series of the engine is labelled from bounded sets only.
    for sample in after.iter().filter(|x| x.name.starts_with("herald_")) {
        for label in sample.labels.keys() {
            assert!(
                [
                    "sender", "outcome", "reason", "result", "code", "kind", "requeued", "quantile"
                ]
                .contains(&label.as_str()),
                "{} has label {label}",
                sample.name
            );
        }
    }
}

#[test]
fn the_listener_serves_metrics_without_a_token_and_stops_with_the_process() {
    let receiver = FakeProvider::start();
    runtime().block_on(listener_serves(&receiver));
}

async fn listener_serves(receiver: &FakeProvider) {
    let dir = tempfile::tempdir().unwrap();
    let (settings, _) = project(dir.path(), 1, "listened", receiver);
    let signal = ShutdownSignal::new();
    let listener = MetricsListener::start_if_configured(&settings, signal.subscribe())
        .await
        .unwrap()
        .expect("[metrics] listen is set");
    let addr = listener.local_addr();
    assert!(addr.ip().is_loopback() && addr.port() != 0, "{addr}");
    // Something recorded, so the text is not empty.
    metrics::counter!("herald_test_listener_total").increment(1);

    let get = |path: &'static str| {
        tokio::task::spawn_blocking(move || {
            let mut stream = std::net::TcpStream::connect(addr).unwrap();
            write!(
                stream,
                "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            .unwrap();
            let mut answer = String::new();
            stream.read_to_string(&mut answer).unwrap();
            answer
        })
    };
    let answer = get("/metrics").await.unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("content-type: {CONTENT_TYPE}")),
        "{head}"
    );
    let samples = parse(body).unwrap_or_else(|e| panic!("{e}\n{body}"));
    assert!(
        samples
            .iter()
            .any(|x| x.name == "herald_test_listener_total"),
        "{body}"
    );
    let other = get("/v1/runs").await.unwrap();
    assert!(other.starts_with("HTTP/1.1 404"), "{other}");

    signal.trigger();
    listener.stopped().await.unwrap();
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "closed after the shutdown"
    );
}

#[test]
fn a_bad_listen_address_is_an_error_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("herald.toml"),
        "[metrics]\nlisten = \"everywhere\"\n",
    )
    .unwrap();
    let error =
        Settings::load(Some(&dir.path().join("herald.toml")), &BTreeMap::new()).unwrap_err();
    assert!(error.to_string().contains("metrics.listen"), "{error}");
    std::fs::write(dir.path().join("herald.toml"), "[metrics]\nport = 9464\n").unwrap();
    let error =
        Settings::load(Some(&dir.path().join("herald.toml")), &BTreeMap::new()).unwrap_err();
    assert!(
        error.to_string().contains("unknown field `port`"),
        "{error}"
    );
}
