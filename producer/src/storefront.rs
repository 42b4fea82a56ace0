//! The simulated storefront: visitors in sessions that land, browse, view products, change their
//! carts, start checkout and order, interleaved as on a busy site. Deterministic for a seed.

use std::borrow::Cow;

use model::{EventType, Item, Order, ReasonCode};

use crate::catalog::{Catalog, COUNTRIES, DEVICES};
use crate::json::{write_event, Anonymous, Overrides};
use crate::rng::Rand;

/// A generated event: its ids are its own, its catalog names the catalog's static strings.
type Event = model::Event<'static>;

const CATALOG_SIZE: usize = 5000;
const CUSTOMERS: usize = 200_000;
const MAX_SESSION_EVENTS: u32 = 60;
const DAY_MS: f64 = 86_400_000.0;

/// Fault injection: shares of the records that are not plain valid events.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Faults {
    /// Records the contract rejects, spread over every reason code.
    pub invalid_rate: f64,
    /// A valid event sent again right after it, as a producer retry does.
    pub duplicate_rate: f64,
    /// Valid events whose `event_time` is 2 to 30 minutes behind the storefront's clock.
    pub late_rate: f64,
}

/// The daily curve's traffic level at `ms` (UTC milliseconds) against the peak: 1 at 19:00, a
/// quarter at 07:00, a cosine between (0.625 over a day).
pub fn daily_level(ms: f64) -> f64 {
    let hour = ms.rem_euclid(DAY_MS) / 3_600_000.0;
    0.25 + 0.75 * (1.0 + ((hour - 19.0) * std::f64::consts::TAU / 24.0).cos()) / 2.0
}

/// How many times the traffic a flash sale brings.
pub const FLASH_SALE_LEVEL: f64 = 3.0;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub seed: u64,
    /// Simulated time of the first event (UTC ms).
    pub start_ms: i64,
    /// Average events per simulated second at the daily peak.
    pub events_per_second: f64,
    /// Visitors browsing at the same time.
    pub concurrent_sessions: usize,
    /// Traffic follows a day: lowest at 07:00 UTC (a quarter of the peak), highest at 19:00.
    pub daily_curve: bool,
    /// A flash sale (triple traffic, more orders, bigger discounts) starts every this many
    /// simulated minutes and lasts `flash_sale_minutes`; 0 disables them.
    pub flash_sale_every_minutes: u32,
    pub flash_sale_minutes: u32,
    pub faults: Faults,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            seed: 1,
            start_ms: 1_795_392_000_000, // 2026-11-23T00:00:00Z
            events_per_second: 1000.0,
            concurrent_sessions: 500,
            daily_curve: true,
            flash_sale_every_minutes: 60,
            flash_sale_minutes: 5,
            faults: Faults::default(),
        }
    }
}

/// What kind of record was produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Valid,
    /// A valid event whose time is minutes behind the clock (still valid).
    Late,
    /// An exact copy of the previous record.
    Duplicate,
    /// A record the contract rejects with this reason.
    Invalid(ReasonCode),
}

/// One produced record. Its bytes are in the buffer given to [`Storefront::next_record`].
#[derive(Debug, Clone)]
pub struct Generated {
    pub kind: Kind,
    /// The session id: a visit stays on one shard in order.
    pub partition_key: String,
    pub event_time_ms: i64,
    /// The event, for valid and late records (not for duplicates or invalid ones).
    pub event: Option<Event>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    Landing,
    Browsing,
    Checkout,
}

struct Session {
    id: String,
    customer: Option<String>,
    anonymous: Anonymous,
    country: usize,
    device: usize,
    stage: Stage,
    last_viewed: Option<usize>,
    cart: Vec<(usize, i32)>,
    events: u32,
}

pub struct Storefront {
    cfg: Config,
    rng: Rand,
    catalog: Catalog,
    sessions: Vec<Session>,
    clock_ms: f64,
    next_session: u64,
    next_event: u64,
    next_order: u64,
    id_prefix: String,
    repeat: Option<(Vec<u8>, String, i64)>,
}

impl Storefront {
    pub fn new(cfg: Config) -> Self {
        let mut rng = Rand::new(cfg.seed);
        let catalog = Catalog::new(&mut rng, CATALOG_SIZE);
        let mut s = Storefront {
            clock_ms: cfg.start_ms as f64,
            id_prefix: format!("{:x}", cfg.seed),
            cfg,
            rng,
            catalog,
            sessions: Vec::new(),
            next_session: 0,
            next_event: 0,
            next_order: 0,
            repeat: None,
        };
        s.sessions = (0..s.cfg.concurrent_sessions.max(1)).map(|_| s.new_session()).collect();
        s.warm_up();
        s
    }

    /// Moves every visitor a random number of steps into its visit, without emitting anything,
    /// so that the first records already have the funnel's steady mix (not only landings).
    fn warm_up(&mut self) {
        for i in 0..self.sessions.len() {
            for _ in 0..self.rng.below(12) {
                if self.step(i).is_none() {
                    self.sessions[i] = self.new_session();
                }
            }
        }
        self.next_event = 0;
        self.next_order = 0;
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    fn new_session(&mut self) -> Session {
        let n = self.next_session;
        self.next_session += 1;
        let country = self.rng.pick(&self.catalog.countries);
        // Logged-in visitors are the majority; anonymous ones send customer_id null or omit it.
        let customer = (!self.rng.chance(0.4)).then(|| format!("c-{}", self.rng.below(CUSTOMERS)));
        let anonymous = if self.rng.chance(0.5) { Anonymous::Null } else { Anonymous::Absent };
        Session {
            id: format!("s{}-{n:x}", self.id_prefix),
            customer,
            anonymous,
            country,
            device: self.rng.pick(&self.catalog.devices),
            stage: Stage::Landing,
            last_viewed: None,
            cart: Vec::new(),
            events: 0,
        }
    }

    fn in_flash_sale(&self) -> bool {
        let every = i64::from(self.cfg.flash_sale_every_minutes) * 60_000;
        every > 0
            && (self.clock_ms as i64 - self.cfg.start_ms).rem_euclid(every)
                < i64::from(self.cfg.flash_sale_minutes) * 60_000
    }

    /// Moves the clock by one event at the current traffic level.
    fn tick(&mut self) {
        let mut level = 1.0;
        if self.cfg.daily_curve {
            level = daily_level(self.clock_ms);
        }
        if self.in_flash_sale() {
            level *= FLASH_SALE_LEVEL;
        }
        self.clock_ms += 1000.0 / (self.cfg.events_per_second.max(1e-3) * level);
    }

    fn event_base(&mut self, s: usize, event_type: EventType) -> Event {
        let n = self.next_event;
        self.next_event += 1;
        let session = &self.sessions[s];
        Event::new(
            format!("e{}-{n:x}", self.id_prefix).into(),
            event_type,
            self.clock_ms as i64,
            session.id.clone().into(),
            session.customer.clone().map(Cow::Owned),
            COUNTRIES[session.country].code.into(),
            DEVICES[session.device].0.into(),
        )
    }

    fn product_event(&mut self, s: usize, t: EventType, product: usize, quantity: Option<i32>) -> Event {
        let country = &COUNTRIES[self.sessions[s].country];
        let price = self.catalog.price(product, country);
        let mut e = self.event_base(s, t);
        let p = &self.catalog.products[product];
        e.product_id = Some(p.id.clone().into());
        e.category = Some(p.category.into());
        e.unit_price_minor = Some(price);
        e.currency = Some(country.currency.into());
        e.quantity = quantity;
        e
    }

    fn cart_value(&self, s: usize) -> i64 {
        let country = &COUNTRIES[self.sessions[s].country];
        self.sessions[s].cart.iter().map(|&(p, q)| self.catalog.price(p, country) * i64::from(q)).sum()
    }

    fn order_event(&mut self, s: usize) -> Event {
        let country = &COUNTRIES[self.sessions[s].country];
        let items: Vec<Item> = self.sessions[s]
            .cart
            .iter()
            .map(|&(p, q)| {
                let price = self.catalog.price(p, country);
                let product = &self.catalog.products[p];
                Item {
                    product_id: product.id.clone().into(),
                    category: product.category.into(),
                    quantity: q,
                    unit_price_minor: price,
                    line_total_minor: price * i64::from(q),
                }
            })
            .collect();
        let sum: i64 = items.iter().map(|i| i.line_total_minor).sum();
        let discount_share = if self.in_flash_sale() { 0.7 } else { 0.2 };
        let discount = if self.rng.chance(discount_share) { sum * [5, 10, 15, 20][self.rng.below(4)] / 100 } else { 0 };
        // Free shipping from $50; else $4.99 in the local currency.
        let shipping_threshold = (5000.0 * country.minor_per_usd_cent) as i64;
        let shipping = if sum < shipping_threshold { (499.0 * country.minor_per_usd_cent).round() as i64 } else { 0 };
        let tax = (sum - discount) * country.tax_bp / 10_000;
        let n = self.next_order;
        self.next_order += 1;
        let mut e = self.event_base(s, EventType::OrderPlaced);
        e.currency = Some(country.currency.into());
        e.order = Some(Order {
            order_id: format!("o{}-{n:x}", self.id_prefix).into(),
            items,
            total_minor: sum - discount + shipping + tax,
            discount_minor: discount,
            shipping_minor: shipping,
            tax_minor: tax,
        });
        e
    }

    fn page(&mut self, s: usize) -> Event {
        let category = crate::catalog::CATEGORIES[self.rng.below(crate::catalog::CATEGORIES.len())];
        let page = match (self.sessions[s].stage, self.rng.below(4)) {
            (Stage::Landing, 0) => "/".to_string(),
            (_, 1) => format!("/search?q={category}&page={}", 1 + self.rng.below(3)),
            (_, 2) => format!("/c/{category}?sort=popular"),
            _ => format!("/c/{category}"),
        };
        let mut e = self.event_base(s, EventType::PageView);
        e.page = Some(page.into());
        e
    }

    /// The next step of session `s`, or `None` when the visitor leaves.
    fn step(&mut self, s: usize) -> Option<Event> {
        let sess = &self.sessions[s];
        if sess.events >= MAX_SESSION_EVENTS {
            return None;
        }
        let order_share = if self.in_flash_sale() { 0.75 } else { 0.55 };
        let r = self.rng.unit();
        let event = match sess.stage {
            Stage::Landing => {
                let e = self.page(s);
                self.sessions[s].stage = Stage::Browsing;
                e
            }
            Stage::Checkout if r < order_share => {
                let e = self.order_event(s);
                let sess = &mut self.sessions[s];
                sess.cart.clear();
                sess.stage = Stage::Browsing;
                e
            }
            Stage::Checkout if r < order_share + 0.15 => return None,
            Stage::Checkout => {
                self.sessions[s].stage = Stage::Browsing;
                self.page(s)
            }
            Stage::Browsing => {
                let has_cart = !sess.cart.is_empty();
                let viewed = sess.last_viewed;
                if has_cart && r < 0.12 {
                    let value = self.cart_value(s);
                    let currency = COUNTRIES[self.sessions[s].country].currency;
                    let mut e = self.event_base(s, EventType::CheckoutStarted);
                    e.cart_value_minor = Some(value);
                    e.currency = Some(currency.into());
                    self.sessions[s].stage = Stage::Checkout;
                    e
                } else if has_cart && r < 0.16 {
                    let line = self.rng.below(self.sessions[s].cart.len());
                    let (product, qty) = self.sessions[s].cart[line];
                    let removed = 1 + self.rng.below(qty as usize) as i32;
                    let e = self.product_event(s, EventType::RemoveFromCart, product, Some(removed));
                    let cart = &mut self.sessions[s].cart;
                    if removed == qty {
                        cart.remove(line);
                    } else {
                        cart[line].1 -= removed;
                    }
                    e
                } else if let Some(product) = viewed.filter(|_| r < 0.30) {
                    let qty = [1, 1, 1, 2, 2, 3][self.rng.below(6)];
                    let e = self.product_event(s, EventType::AddToCart, product, Some(qty));
                    let sess = &mut self.sessions[s];
                    match sess.cart.iter_mut().find(|(p, _)| *p == product) {
                        Some(line) => line.1 += qty,
                        None => sess.cart.push((product, qty)),
                    }
                    sess.last_viewed = None;
                    e
                } else if r < 0.82 {
                    let product = self.catalog.pick_product(&mut self.rng);
                    self.sessions[s].last_viewed = Some(product);
                    self.product_event(s, EventType::ProductView, product, None)
                } else if r < 0.96 {
                    self.page(s)
                } else {
                    return None;
                }
            }
        };
        self.sessions[s].events += 1;
        Some(event)
    }

    /// The next valid event of the storefront: a random active visitor's next step.
    fn next_event(&mut self) -> (Event, Anonymous) {
        self.tick();
        loop {
            let s = self.rng.below(self.sessions.len());
            if let Some(e) = self.step(s) {
                return (e, self.sessions[s].anonymous);
            }
            self.sessions[s] = self.new_session();
        }
    }

    /// Writes the next record's bytes into `buf` (cleared first) and describes it.
    pub fn next_record(&mut self, buf: &mut Vec<u8>) -> Generated {
        buf.clear();
        if let Some((bytes, partition_key, event_time_ms)) = self.repeat.take() {
            buf.extend_from_slice(&bytes);
            return Generated { kind: Kind::Duplicate, partition_key, event_time_ms, event: None };
        }
        let (mut event, anonymous) = self.next_event();
        let f = self.cfg.faults;
        if f.invalid_rate > 0.0 && self.rng.chance(f.invalid_rate) {
            let code = ReasonCode::ALL[self.rng.below(ReasonCode::ALL.len())];
            let partition_key = event.session_id.to_string();
            self.write_invalid(buf, &mut event, anonymous, code);
            return Generated {
                kind: Kind::Invalid(code),
                partition_key,
                event_time_ms: event.event_time_ms,
                event: None,
            };
        }
        let mut kind = Kind::Valid;
        if f.late_rate > 0.0 && self.rng.chance(f.late_rate) {
            event.event_time_ms -= self.rng.between(120_000, 1_800_000);
            kind = Kind::Late;
        }
        write_event(buf, &event, anonymous, &Overrides::default());
        if f.duplicate_rate > 0.0 && self.rng.chance(f.duplicate_rate) {
            self.repeat = Some((buf.clone(), event.session_id.to_string(), event.event_time_ms));
        }
        Generated {
            kind,
            partition_key: event.session_id.to_string(),
            event_time_ms: event.event_time_ms,
            event: Some(event),
        }
    }

    /// A record that fails exactly the check of `code` (and none before it).
    fn write_invalid(&mut self, buf: &mut Vec<u8>, e: &mut Event, anonymous: Anonymous, code: ReasonCode) {
        let mut o = Overrides::default();
        match code {
            ReasonCode::InvalidEncoding | ReasonCode::InvalidJson => {}
            ReasonCode::UnknownEventType => {
                o.event_type = Some(["wishlist_add", "PAGE_VIEW", "refund"][self.rng.below(3)])
            }
            ReasonCode::SchemaViolation => match self.rng.below(3) {
                0 => o.country = Some("usa"),
                1 => e.session_id = Cow::Borrowed(""),
                _ => o.event_time = Some("yesterday"),
            },
            ReasonCode::InconsistentTotal => {
                if e.order.is_none() {
                    let s = self.sessions.iter().position(|s| s.id == e.session_id).unwrap_or(0);
                    let product = self.catalog.pick_product(&mut self.rng);
                    let saved = std::mem::replace(&mut self.sessions[s].cart, vec![(product, 1)]);
                    let id = std::mem::take(&mut e.event_id);
                    *e = self.order_event(s);
                    e.event_id = id;
                    self.sessions[s].cart = saved;
                }
                o.total_delta = 1;
            }
            ReasonCode::EventTimeOutOfRange => {
                o.event_time =
                    Some(if self.rng.chance(0.5) { "1999-12-31T23:59:59.000Z" } else { "2999-01-01T00:00:00.000Z" })
            }
        }
        write_event(buf, e, anonymous, &o);
        match code {
            // A byte that is never valid UTF-8, inside the event_id string.
            ReasonCode::InvalidEncoding => buf[13] = 0xFF,
            ReasonCode::InvalidJson => buf.truncate(buf.len() / 2),
            _ => {}
        }
    }
}
