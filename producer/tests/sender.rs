//! The Kinesis sender under partial failures, throttling and transient errors (injected by a
//! wrapper of the Kinesis API, since no emulator throttles): every record is stored exactly once,
//! a record that fails every attempt is handed back, and fatal errors stop the run.

use testkit::{kinesis_client, read_stream, servers};

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use producer::kinesis::{
    send_all, ApiError, Entry, KinesisApi, Outcome, Router, RoutingError, SdkKinesis, SendConfig, SendStats, Shard,
    Strategy,
};

/// An in-memory stream of two shards.
#[derive(Default)]
struct Fake {
    stored: Mutex<Vec<Entry>>,
}

#[async_trait]
impl KinesisApi for Fake {
    async fn put_records(&self, _: &str, entries: &[Entry]) -> Result<Vec<Outcome>, ApiError> {
        self.stored.lock().unwrap().extend(entries.iter().cloned());
        Ok(entries
            .iter()
            .map(|e| Outcome::Stored { shard_id: format!("shardId-{}", e.partition_key.len() % 2) })
            .collect())
    }
    async fn open_shards(&self, _: &str) -> Result<Vec<Shard>, ApiError> {
        Ok(vec![
            Shard { id: "shardId-0".into(), starting_hash_key: 0 },
            Shard { id: "shardId-1".into(), starting_hash_key: 1 << 127 },
        ])
    }
}

/// A stream with a capacity, as Kinesis has per shard: records beyond `capacity` per second are
/// refused with ProvisionedThroughputExceededException, and 3% of requests are throttled whole.
/// Besides, 5% of requests fail before storing anything (500) and 5% of records fail with
/// InternalFailure. Refused records never reach the stream.
struct Faulty<A> {
    inner: A,
    state: Mutex<u64>,
    capacity: f64,
    bucket: Mutex<(f64, std::time::Instant)>,
    always_fail: Option<Bytes>,
}

impl<A> Faulty<A> {
    fn new(inner: A, capacity: f64) -> Self {
        Faulty {
            inner,
            state: Mutex::new(0x9E37_79B9_7F4A_7C15),
            capacity,
            bucket: Mutex::new((capacity, std::time::Instant::now())),
            always_fail: None,
        }
    }

    /// Whether the stream has room for one more record now.
    fn admit(&self) -> bool {
        let mut b = self.bucket.lock().unwrap();
        let now = std::time::Instant::now();
        b.0 = (b.0 + now.duration_since(b.1).as_secs_f64() * self.capacity).min(self.capacity);
        b.1 = now;
        if b.0 >= 1.0 {
            b.0 -= 1.0;
            true
        } else {
            false
        }
    }
    fn roll(&self) -> f64 {
        let mut s = self.state.lock().unwrap();
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        (*s >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[async_trait]
impl<A: KinesisApi> KinesisApi for Faulty<A> {
    async fn put_records(&self, stream: &str, entries: &[Entry]) -> Result<Vec<Outcome>, ApiError> {
        let r = self.roll();
        if r < 0.03 {
            return Err(ApiError::Throttled("Rate exceeded for stream".into()));
        }
        if r < 0.08 {
            return Err(ApiError::Other { message: "500 InternalFailure".into(), retryable: true });
        }
        let refused: Vec<Option<&str>> = entries
            .iter()
            .map(|e| {
                if self.always_fail.as_ref() == Some(&e.data) || self.roll() < 0.05 {
                    Some("InternalFailure")
                } else if !self.admit() {
                    Some("ProvisionedThroughputExceededException")
                } else {
                    None
                }
            })
            .collect();
        let forward: Vec<Entry> =
            entries.iter().zip(&refused).filter(|(_, r)| r.is_none()).map(|(e, _)| e.clone()).collect();
        let mut stored =
            if forward.is_empty() { Vec::new() } else { self.inner.put_records(stream, &forward).await? }.into_iter();
        Ok(refused
            .iter()
            .map(|r| match r {
                Some(code) => {
                    Outcome::Failed { code: code.to_string(), message: "refused by the fault injector".into() }
                }
                None => stored.next().expect("one outcome per forwarded record"),
            })
            .collect())
    }
    async fn open_shards(&self, stream: &str) -> Result<Vec<Shard>, ApiError> {
        self.inner.open_shards(stream).await
    }
}

fn entries(n: usize) -> Vec<Entry> {
    (0..n)
        .map(|i| Entry {
            data: Bytes::from(format!("{{\"n\":{i}}}")),
            partition_key: format!("session-{}", i % 97),
            explicit_hash_key: None,
            records: 1,
        })
        .collect()
}

fn fast(stream: &str) -> SendConfig {
    let mut cfg = SendConfig::new(stream);
    cfg.base_backoff = Duration::from_millis(1);
    cfg.max_backoff = Duration::from_millis(20);
    cfg.max_attempts = 40;
    cfg
}

async fn send<A: KinesisApi>(api: &A, cfg: &SendConfig, list: Vec<Entry>) -> (Result<Vec<Entry>, ApiError>, SendStats) {
    let (tx, rx) = tokio::sync::mpsc::channel(1000);
    let stats = Arc::new(Mutex::new(SendStats::default()));
    let feed = async move {
        for e in list {
            tx.send(e).await.unwrap();
        }
    };
    let (_, result) = tokio::join!(feed, send_all(api, cfg, rx, stats.clone(), 7));
    let stats = stats.lock().unwrap().clone();
    (result, stats)
}

fn multiset(list: &[Entry]) -> BTreeMap<Bytes, usize> {
    let mut m = BTreeMap::new();
    for e in list {
        *m.entry(e.data.clone()).or_default() += 1;
    }
    m
}

#[tokio::test]
async fn partial_failures_and_throttling_lose_and_duplicate_nothing() {
    // 12,000 records into a stream that takes 4,000 a second: the sender must slow down.
    let api = Faulty::new(Fake::default(), 4000.0);
    let list = entries(12_000);
    let (result, stats) = send(&api, &fast("s"), list.clone()).await;
    assert!(result.unwrap().is_empty());
    let stored = api.inner.stored.lock().unwrap().clone();
    assert_eq!(multiset(&stored), multiset(&list), "each record stored exactly once");
    // Retries included, every partition key's records are stored in the order they were sent.
    let per_key = |l: &[Entry]| {
        let mut m: BTreeMap<String, Vec<Bytes>> = BTreeMap::new();
        for e in l {
            m.entry(e.partition_key.clone()).or_default().push(e.data.clone());
        }
        m
    };
    assert_eq!(per_key(&stored), per_key(&list));
    assert_eq!((stats.sent, stats.failed), (12_000, 0));
    assert!(stats.throttled > 0 && stats.retried > stats.throttled, "{stats:?}");
    assert!(stats.rate_limit.is_some(), "throttling set a rate limit");
    assert!(stats.requests > 40, "batches of at most 500");
    assert_eq!(stats.per_shard.values().sum::<u64>(), 12_000);
    assert!(stats.latency(0.99).is_some());
}

#[tokio::test]
async fn a_record_that_fails_every_attempt_is_handed_back_not_dropped() {
    let list = entries(300);
    let mut api = Faulty::new(Fake::default(), 1e9);
    api.always_fail = Some(list[123].data.clone());
    let mut cfg = fast("s");
    cfg.max_attempts = 5;
    let (result, stats) = send(&api, &cfg, list.clone()).await;
    assert_eq!(result.unwrap(), vec![list[123].clone()]);
    assert_eq!((stats.sent, stats.failed), (299, 1));
}

struct Missing;

#[async_trait]
impl KinesisApi for Missing {
    async fn put_records(&self, stream: &str, _: &[Entry]) -> Result<Vec<Outcome>, ApiError> {
        Err(ApiError::StreamNotFound(stream.into()))
    }
    async fn open_shards(&self, stream: &str) -> Result<Vec<Shard>, ApiError> {
        Err(ApiError::StreamNotFound(stream.into()))
    }
}

#[tokio::test]
async fn a_missing_stream_stops_the_run_with_a_clear_error() {
    let (result, _) = send(&Missing, &fast("orders"), entries(10)).await;
    let err = result.unwrap_err().to_string();
    assert!(err.contains("\"orders\" was not found"), "{err}");
}

#[test]
fn routing_spreads_records_as_the_strategy_says() {
    let shards: Vec<Shard> =
        (0..4u128).map(|i| Shard { id: format!("shardId-{i}"), starting_hash_key: i << 126 }).collect();
    let count = |strategy: Strategy| {
        let mut r = Router::new(strategy, shards.clone(), 1).unwrap();
        let mut per = BTreeMap::new();
        for i in 0..8000 {
            let (pk, ehk) = r.route(format!("s-{i}"));
            *per.entry(ehk.unwrap_or(pk)).or_insert(0usize) += 1;
        }
        per
    };
    let rr = count(Strategy::RoundRobin);
    assert_eq!(rr.values().copied().collect::<Vec<_>>(), vec![2000; 4]);
    let weighted = count(Strategy::Weighted(vec![8.0, 1.0, 1.0, 1.0]));
    let hot = weighted[&0u128.to_string()];
    assert!((5500..6100).contains(&hot), "{weighted:?}");
    assert_eq!(count(Strategy::Random).len(), 8000);
    let err = Router::new(Strategy::Weighted(vec![1.0, 2.0]), shards.clone(), 1).err().unwrap();
    assert_eq!(err, RoutingError::WeightCount { weights: 2, shards: 4 });
    assert!(err.to_string().contains("4 open shards"));
    assert_eq!(Router::new(Strategy::Weighted(vec![0.0; 4]), shards, 1).err(), Some(RoutingError::BadWeights));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn against_moto_kinesis_faults_lose_and_duplicate_nothing() {
    let moto = servers::start_moto();
    let client = kinesis_client(&moto.endpoint());
    client.create_stream().stream_name("orders").shard_count(3).send().await.unwrap();
    let api = Faulty::new(SdkKinesis::new(client.clone()), 1500.0);
    let list = entries(3000);
    // One request at a time: moto_server assigns sequence numbers without a lock, and
    // concurrent PutRecords to a shard can overwrite records inside moto.
    let mut cfg = fast("orders");
    cfg.concurrency = 1;
    let (result, stats) = send(&api, &cfg, list.clone()).await;
    assert!(result.unwrap().is_empty());
    assert!(stats.throttled > 0);
    let stored: Vec<Entry> = read_stream(&client, "orders")
        .await
        .into_values()
        .flatten()
        .map(|(pk, data)| Entry { data, partition_key: pk, explicit_hash_key: None, records: 1 })
        .collect();
    assert_eq!(multiset(&stored), multiset(&list));
    // The shards reported per record add up to what the stream holds.
    assert_eq!(stats.per_shard.len(), 3);
    let shards = SdkKinesis::new(client).open_shards("orders").await.unwrap();
    assert_eq!(shards.len(), 3);
}
