use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

/// The six event types of contract section 1.1 (case-sensitive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    PageView,
    ProductView,
    AddToCart,
    RemoveFromCart,
    CheckoutStarted,
    OrderPlaced,
}

impl EventType {
    pub const ALL: [EventType; 6] = [
        EventType::PageView,
        EventType::ProductView,
        EventType::AddToCart,
        EventType::RemoveFromCart,
        EventType::CheckoutStarted,
        EventType::OrderPlaced,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::PageView => "page_view",
            EventType::ProductView => "product_view",
            EventType::AddToCart => "add_to_cart",
            EventType::RemoveFromCart => "remove_from_cart",
            EventType::CheckoutStarted => "checkout_started",
            EventType::OrderPlaced => "order_placed",
        }
    }

    /// Product and cart events carry `product_id`, `category`, `unit_price_minor`, `currency`.
    pub fn is_product_event(self) -> bool {
        matches!(self, EventType::ProductView | EventType::AddToCart | EventType::RemoveFromCart)
    }

    pub fn is_cart_event(self) -> bool {
        matches!(self, EventType::AddToCart | EventType::RemoveFromCart)
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is none of the contract's event types.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown event type {0:?}")]
pub struct UnknownEventType(pub String);

impl FromStr for EventType {
    type Err = UnknownEventType;
    fn from_str(s: &str) -> Result<Self, UnknownEventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == s).ok_or_else(|| UnknownEventType(s.to_string()))
    }
}

/// One line of an `order_placed` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item<'a> {
    pub product_id: Cow<'a, str>,
    pub category: Cow<'a, str>,
    pub quantity: i32,
    pub unit_price_minor: i64,
    /// `quantity * unit_price_minor`, checked to fit 64 bits during validation.
    pub line_total_minor: i64,
}

/// The order part of an `order_placed` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order<'a> {
    pub order_id: Cow<'a, str>,
    pub items: Vec<Item<'a>>,
    pub total_minor: i64,
    pub discount_minor: i64,
    pub shipping_minor: i64,
    pub tax_minor: i64,
}

impl Order<'_> {
    /// Sum of item quantities (at most 500 * 10,000, so it fits `int`).
    pub fn units(&self) -> i32 {
        self.items.iter().map(|i| i.quantity).sum()
    }
}

/// A valid storefront event. The optional fields are exactly the nullable columns of the
/// `events` table: each is `Some` only for the event types that carry it.
///
/// Its strings borrow from the record's text where they can ([`crate::validate`]: a string
/// without escapes is not copied), or own their text (an escaped string, a generated event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event<'a> {
    pub event_id: Cow<'a, str>,
    pub event_type: EventType,
    /// UTC milliseconds since the epoch.
    pub event_time_ms: i64,
    pub session_id: Cow<'a, str>,
    pub customer_id: Option<Cow<'a, str>>,
    pub country: Cow<'a, str>,
    pub device: Cow<'a, str>,
    pub page: Option<Cow<'a, str>>,
    pub product_id: Option<Cow<'a, str>>,
    pub category: Option<Cow<'a, str>>,
    pub quantity: Option<i32>,
    pub unit_price_minor: Option<i64>,
    pub cart_value_minor: Option<i64>,
    pub currency: Option<Cow<'a, str>>,
    pub order: Option<Order<'a>>,
}

impl<'a> Event<'a> {
    /// An event with the fields of every type; the type-specific ones start empty.
    pub fn new(
        event_id: Cow<'a, str>,
        event_type: EventType,
        event_time_ms: i64,
        session_id: Cow<'a, str>,
        customer_id: Option<Cow<'a, str>>,
        country: Cow<'a, str>,
        device: Cow<'a, str>,
    ) -> Self {
        Event {
            event_id,
            event_type,
            event_time_ms,
            session_id,
            customer_id,
            country,
            device,
            page: None,
            product_id: None,
            category: None,
            quantity: None,
            unit_price_minor: None,
            cart_value_minor: None,
            currency: None,
            order: None,
        }
    }
}
