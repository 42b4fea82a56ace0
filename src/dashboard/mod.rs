//! The live dashboard of the main job: the figures the run shares (what the producer made and put,
//! what the event source mapping and the handler committed) turned into a [`Snapshot`] once a
//! second, served as JSON and as server-sent events beside a self-contained page
//! (`page.html`: no build step, no CDN).

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::{Json, Router};
use model::EventType;
use processor::digest::Minute;
use producer::kinesis::SendStats;
use serde::Serialize;

use crate::lambda::esm::EsmStats;
use crate::publishing::PublishStats;

const PAGE: &str = include_str!("page.html");
/// Seconds of throughput history kept for the chart.
const HISTORY: usize = 300;
/// Minutes of orders and revenue shown: the newest and the ones before it.
const MINUTES: i64 = 10;
const TOP: usize = 10;

/// The counters a run shares with its progress line and its dashboard.
pub struct Live {
    pub stream: String,
    pub shards: usize,
    pub target_rate: f64,
    pub started: Instant,
    pub produced: AtomicU64,
    pub sent: Arc<Mutex<SendStats>>,
    pub esm: Arc<Mutex<EsmStats>>,
    pub published: Arc<Mutex<PublishStats>>,
    pub finished: AtomicBool,
    history: Mutex<VecDeque<Tick>>,
}

/// Cumulative counts at one moment.
#[derive(Debug, Clone, Copy)]
struct Tick {
    secs: f64,
    produced: u64,
    processed: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Rate {
    /// Seconds since the start of the run.
    pub t: f64,
    pub in_per_s: f64,
    pub out_per_s: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MinutePoint {
    /// `HH:MM` (UTC) of the event-time minute.
    pub minute: String,
    pub orders: u64,
    /// Revenue per currency in minor units (as a float for the charts).
    pub revenue_minor: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FunnelStep {
    pub step: &'static str,
    pub count: u64,
    /// Share of the previous step, in percent.
    pub of_previous: Option<f64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ShardPoint {
    pub shard: String,
    pub checkpoint: u64,
    pub iterator_age_ms: i64,
}

/// Everything the page shows, at one moment.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Snapshot {
    pub stream: String,
    pub shards: usize,
    pub target_rate: f64,
    pub elapsed_s: f64,
    pub finished: bool,
    pub produced: u64,
    pub put: u64,
    pub throttled: u64,
    pub processed: u64,
    pub events: u64,
    pub quarantined: u64,
    pub duplicates: u64,
    pub discarded: u64,
    pub orders: u64,
    pub invocations: u64,
    pub failed_invocations: u64,
    /// Publisher rounds that published something, and the files they made visible.
    pub rounds: u64,
    pub files_published: u64,
    /// The latest round's longest wait between a commit and its round (ms).
    pub publish_lag_ms: i64,
    pub throughput: Vec<Rate>,
    pub minutes: Vec<MinutePoint>,
    pub funnel: Vec<FunnelStep>,
    pub top_products: Vec<(String, u64)>,
    pub top_categories: Vec<(String, u64)>,
    pub iterator_age: Vec<ShardPoint>,
    pub quarantine: Vec<(String, u64)>,
}

impl Live {
    pub fn new(
        stream: &str,
        shards: usize,
        target_rate: f64,
        sent: Arc<Mutex<SendStats>>,
        esm: Arc<Mutex<EsmStats>>,
        published: Arc<Mutex<PublishStats>>,
    ) -> Self {
        Live {
            stream: stream.to_string(),
            shards,
            target_rate,
            started: Instant::now(),
            produced: AtomicU64::new(0),
            sent,
            esm,
            published,
            finished: AtomicBool::new(false),
            history: Mutex::new(VecDeque::with_capacity(HISTORY + 1)),
        }
    }

    /// Records the counts now, for the throughput chart (called once a second).
    pub fn tick(&self) {
        let processed = self.esm.lock().unwrap_or_else(|e| e.into_inner()).records;
        let tick = Tick {
            secs: self.started.elapsed().as_secs_f64(),
            produced: self.produced.load(Ordering::Relaxed),
            processed,
        };
        let mut h = self.history.lock().unwrap_or_else(|e| e.into_inner());
        h.push_back(tick);
        while h.len() > HISTORY + 1 {
            h.pop_front();
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        let throughput = rates(&self.history.lock().unwrap_or_else(|e| e.into_inner()));
        let sent = self.sent.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let esm = self.esm.lock().unwrap_or_else(|e| e.into_inner());
        let d = &esm.digest;
        let minutes = recent_minutes(&d.minutes);
        let published = self.published.lock().unwrap_or_else(|e| e.into_inner()).clone();
        Snapshot {
            stream: self.stream.clone(),
            shards: self.shards,
            target_rate: self.target_rate,
            elapsed_s: self.started.elapsed().as_secs_f64(),
            finished: self.finished.load(Ordering::SeqCst),
            produced: self.produced.load(Ordering::Relaxed),
            put: sent.sent,
            throttled: sent.throttled,
            processed: esm.user_records(),
            events: esm.events,
            quarantined: esm.quarantined.values().sum(),
            duplicates: esm.duplicates,
            discarded: esm.discarded,
            orders: d.orders(),
            invocations: esm.invocations,
            failed_invocations: esm.failed_invocations,
            rounds: published.rounds,
            files_published: published.files,
            publish_lag_ms: published.lag_ms,
            throughput,
            minutes,
            funnel: funnel(|t| d.count(t)),
            top_products: top(&d.units_by_product),
            top_categories: top(&d.units_by_category),
            iterator_age: esm
                .shards
                .iter()
                .map(|(shard, (checkpoint, age))| ShardPoint {
                    shard: shard.clone(),
                    checkpoint: *checkpoint,
                    iterator_age_ms: *age,
                })
                .collect(),
            quarantine: esm.quarantined.iter().map(|(c, n)| (c.as_str().to_string(), *n)).collect(),
        }
    }
}

/// The last [`MINUTES`] event-time minutes up to the newest, a point for each (zero where no
/// order fell): late events of older minutes still count in the totals, not in the chart.
fn recent_minutes(minutes: &BTreeMap<i64, Minute>) -> Vec<MinutePoint> {
    let Some(newest) = minutes.keys().next_back().copied() else { return Vec::new() };
    let none = Minute::default();
    (0..MINUTES)
        .rev()
        .map(|back| newest - back * model::MINUTE_MS)
        .map(|start| {
            let m = minutes.get(&start).unwrap_or(&none);
            MinutePoint {
                minute: model::format_millis(start)[11..16].to_string(),
                orders: m.orders,
                revenue_minor: m.revenue_minor.iter().map(|(c, v)| (c.clone(), *v as f64)).collect(),
            }
        })
        .collect()
}

/// Per-second rates between successive ticks.
fn rates(history: &VecDeque<Tick>) -> Vec<Rate> {
    history
        .iter()
        .zip(history.iter().skip(1))
        .filter(|(a, b)| b.secs > a.secs)
        .map(|(a, b)| {
            let dt = b.secs - a.secs;
            Rate {
                t: (b.secs * 10.0).round() / 10.0,
                in_per_s: b.produced.saturating_sub(a.produced) as f64 / dt,
                out_per_s: b.processed.saturating_sub(a.processed) as f64 / dt,
            }
        })
        .collect()
}

/// The storefront funnel, each step's count and its share of the step before.
fn funnel(count: impl Fn(EventType) -> u64) -> Vec<FunnelStep> {
    let steps = [
        EventType::PageView,
        EventType::ProductView,
        EventType::AddToCart,
        EventType::CheckoutStarted,
        EventType::OrderPlaced,
    ];
    let mut previous: Option<u64> = None;
    steps
        .iter()
        .map(|t| {
            let n = count(*t);
            let of_previous = previous.filter(|p| *p > 0).map(|p| (1000.0 * n as f64 / p as f64).round() / 10.0);
            previous = Some(n);
            FunnelStep { step: t.as_str(), count: n, of_previous }
        })
        .collect()
}

/// The largest entries, largest first (ties by name).
fn top(counts: &BTreeMap<String, u64>) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = counts.iter().map(|(k, n)| (k.clone(), *n)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(TOP);
    v
}

fn router(live: Arc<Live>) -> Router {
    let for_json = live.clone();
    Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/api/snapshot", get(move || async move { Json(for_json.snapshot()) }))
        .route("/api/events", get(move || async move { events(live) }))
}

/// A snapshot every second as a server-sent event named `snapshot`.
fn events(live: Arc<Live>) -> impl IntoResponse {
    let stream = futures::stream::unfold((live, true), |(live, first)| async move {
        if !first {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let event = Event::default().event("snapshot").json_data(live.snapshot()).unwrap_or_else(|e| {
            Event::default().event("error").data(format!("the snapshot could not be serialised: {e}"))
        });
        Some((Ok::<_, Infallible>(event), (live, false)))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// A bound dashboard: its address, and the server and sampler tasks (aborted on drop).
pub struct Dashboard {
    pub addr: SocketAddr,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Dashboard {
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Binds `addr` and serves the dashboard of `live` until the returned handle is dropped.
pub async fn serve(live: Arc<Live>, addr: SocketAddr) -> std::io::Result<Dashboard> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let app = router(live.clone());
    let server = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the dashboard server stopped");
        }
    });
    let sampler = tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(1));
        loop {
            every.tick().await;
            live.tick();
        }
    });
    Ok(Dashboard { addr, tasks: vec![server, sampler] })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_deltas_per_second_between_ticks() {
        let h: VecDeque<Tick> = [
            Tick { secs: 1.0, produced: 100, processed: 0 },
            Tick { secs: 2.0, produced: 600, processed: 300 },
            Tick { secs: 2.5, produced: 900, processed: 300 },
        ]
        .into();
        assert_eq!(
            rates(&h),
            vec![Rate { t: 2.0, in_per_s: 500.0, out_per_s: 300.0 }, Rate { t: 2.5, in_per_s: 600.0, out_per_s: 0.0 }]
        );
        assert!(rates(&VecDeque::new()).is_empty());
    }

    #[test]
    fn the_funnel_gives_each_step_as_a_share_of_the_one_before() {
        let f = funnel(|t| match t {
            EventType::PageView => 1000,
            EventType::ProductView => 400,
            EventType::AddToCart => 100,
            EventType::CheckoutStarted => 0,
            _ => 0,
        });
        let steps: Vec<_> = f.iter().map(|s| (s.step, s.count, s.of_previous)).collect();
        assert_eq!(
            steps,
            vec![
                ("page_view", 1000, None),
                ("product_view", 400, Some(40.0)),
                ("add_to_cart", 100, Some(25.0)),
                ("checkout_started", 0, Some(0.0)),
                ("order_placed", 0, None),
            ]
        );
    }

    #[test]
    fn the_chart_shows_the_last_ten_minutes_with_gaps_filled() {
        let m = |orders| Minute { orders, revenue_minor: [("EUR".to_string(), 100 * orders as i128)].into() };
        let base = model::parse_rfc3339("2026-11-24T09:20:00Z").unwrap().millis;
        let minutes: BTreeMap<i64, Minute> =
            [(base - 3_600_000, m(1)), (base, m(5)), (base + 5 * 60_000, m(7)), (base + 9 * 60_000, m(2))].into();
        let points = recent_minutes(&minutes);
        assert_eq!(points.len(), 10);
        assert_eq!((points[0].minute.as_str(), points[0].orders), ("09:20", 5));
        assert_eq!((points[1].orders, points[1].revenue_minor.get("EUR")), (0, None));
        assert_eq!((points[5].orders, points[5].revenue_minor["EUR"]), (7, 700.0));
        assert_eq!((points[9].minute.as_str(), points[9].orders), ("09:29", 2));
        assert!(recent_minutes(&BTreeMap::new()).is_empty());
    }

    #[test]
    fn top_keeps_the_largest_ten_with_ties_by_name() {
        let counts: BTreeMap<String, u64> = (0..15).map(|i| (format!("p{i:02}"), (i % 5) as u64)).collect();
        let t = top(&counts);
        assert_eq!(t.len(), TOP);
        assert_eq!(t[0], ("p04".to_string(), 4));
        assert_eq!(t[1], ("p09".to_string(), 4));
        assert!(t.windows(2).all(|w| w[0].1 >= w[1].1));
    }

    #[tokio::test]
    async fn the_server_answers_the_page_the_snapshot_and_the_event_stream() {
        let live = Arc::new(Live::new("s", 2, 100.0, Default::default(), Default::default(), Default::default()));
        live.produced.store(42, Ordering::Relaxed);
        let d = serve(live, "127.0.0.1:0".parse().unwrap()).await.unwrap();
        let get = |path: &str| {
            let addr = d.addr;
            let path = path.to_string();
            tokio::task::spawn_blocking(move || {
                use std::io::{Read, Write};
                let mut s = std::net::TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
                write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
                let mut buf = vec![0u8; 1 << 16];
                let mut out = Vec::new();
                // The event stream never ends: read what the first second brings.
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    out.extend_from_slice(&buf[..n]);
                    if out.windows(4).any(|w| w == b"\n\n\n\n")
                        || String::from_utf8_lossy(&out).contains("\"produced\"")
                    {
                        break;
                    }
                }
                String::from_utf8_lossy(&out).into_owned()
            })
        };
        let page = get("/").await.unwrap();
        assert!(page.starts_with("HTTP/1.1 200") && page.contains("<html"), "{page:.200}");
        assert!(!page.contains("http://") && !page.contains("https://"), "the page loads nothing from elsewhere");
        let snap = get("/api/snapshot").await.unwrap();
        assert!(snap.contains("application/json") && snap.contains("\"produced\":42"), "{snap}");
        let sse = get("/api/events").await.unwrap();
        assert!(sse.contains("text/event-stream") && sse.contains("event: snapshot"), "{sse}");
    }
}
