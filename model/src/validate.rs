//! Record bytes to [`Event`] or [`Rejection`], with the checks of contract section 1.3 applied in
//! the order of its table.

use std::borrow::Cow;

use crate::event::{Event, EventType, Item, Order};
use crate::json::{self, Json, ParseError};
use crate::reason::{ReasonCode, Rejection};
use crate::time::{format_millis, parse_rfc3339};

/// First bytes of a Kinesis Producer Library aggregated record (contract 1.4).
pub const KPL_MAGIC: [u8; 4] = [0xF3, 0x89, 0x9A, 0xC2];
/// Objects and arrays nested deeper than this are `invalid_json`.
pub const MAX_JSON_DEPTH: usize = 32;
/// 2000-01-01T00:00:00Z: earlier event times are out of range.
pub const EARLIEST_EVENT_TIME_MS: i64 = 946_684_800_000;
/// An event time may be at most 5 minutes later than the record's arrival.
pub const MAX_FUTURE_SKEW_MS: i64 = 5 * 60 * 1000;
/// Records sharing an `event_id` on one shard within this much arrival time are one event.
pub const DEDUP_WINDOW_MS: i64 = 10 * 60 * 1000;

const MAX_ITEMS: usize = 500;
const MAX_QUANTITY: i64 = 10_000;

type Check<T> = Result<T, Rejection>;

fn schema(reason: String) -> Rejection {
    Rejection::new(ReasonCode::SchemaViolation, reason)
}

/// Declares [`Field`] from one list of its variants and their keys: the enum, each field's key,
/// and the field of a key (a `match`, which the compiler turns into a comparison of lengths, then
/// of a few words).
macro_rules! fields {
    ($($field:ident => $key:literal,)*) => {
        /// The members validation reads. An object's members are matched to these once, in one
        /// pass (the last of a repeated key wins, as in `serde_json::Value`), so that each check
        /// finds its field in a slot rather than by comparing keys.
        #[derive(Clone, Copy, Debug, PartialEq)]
        enum Field {
            $($field,)*
        }

        impl Field {
            /// Every field, in the order of the enum (a field's index is its discriminant).
            const ALL: [Field; [$($key),*].len()] = [$(Field::$field),*];
            const COUNT: usize = Field::ALL.len();

            fn of(key: &str) -> Option<Field> {
                match key {
                    $($key => Some(Field::$field),)*
                    _ => None,
                }
            }

            fn key(self) -> &'static str {
                match self {
                    $(Field::$field => $key,)*
                }
            }
        }
    };
}

fields! {
    EventType => "event_type",
    EventId => "event_id",
    EventTime => "event_time",
    SessionId => "session_id",
    CustomerId => "customer_id",
    Country => "country",
    Device => "device",
    Page => "page",
    ProductId => "product_id",
    Category => "category",
    UnitPriceMinor => "unit_price_minor",
    Currency => "currency",
    Quantity => "quantity",
    CartValueMinor => "cart_value_minor",
    OrderId => "order_id",
    Items => "items",
    TotalMinor => "total_minor",
    DiscountMinor => "discount_minor",
    ShippingMinor => "shipping_minor",
    TaxMinor => "tax_minor",
}

/// The slot of a member's key, for [`json::parse_object`]: its field's index.
fn slot(key: &str) -> Option<usize> {
    Field::of(key).map(|field| field as usize)
}

/// Field access with errors that name the field (`items[2].quantity`).
/// The strings it returns borrow from the record's text (`'de`).
struct Fields<'de> {
    /// Each field's value, by [`Field`], put in its slot as the object is read: no list of the
    /// object's members is kept.
    slots: [Option<Json<'de>>; Field::COUNT],
    /// The index of the item the object is, `None` for the event itself. (The name is made only
    /// for an error: most records have none.)
    item: Option<usize>,
}

impl<'de> Fields<'de> {
    /// Empty slots, for the event (`None`) or its item `item`.
    fn new(item: Option<usize>) -> Self {
        Fields { slots: [const { None }; Field::COUNT], item }
    }

    fn get(&self, field: Field) -> Option<&Json<'de>> {
        self.slots[field as usize].as_ref()
    }

    /// A field's value taken out (for `items`, whose objects become fields of their own).
    fn take(&mut self, field: Field) -> Check<Json<'de>> {
        match self.slots[field as usize].take() {
            Some(value) => Ok(value),
            None => Err(self.missing(field)),
        }
    }

    fn missing(&self, field: Field) -> Rejection {
        schema(format!("missing required field `{}`", self.name(field)))
    }

    fn name(&self, field: Field) -> String {
        match self.item {
            None => field.key().to_string(),
            Some(i) => format!("items[{i}].{}", field.key()),
        }
    }

    fn required(&self, field: Field) -> Check<&Json<'de>> {
        self.get(field).ok_or_else(|| self.missing(field))
    }

    fn string(&self, field: Field, min: usize, max: usize) -> Check<Cow<'de, str>> {
        let v = self.required(field)?;
        self.check_string(field, v, min, max)
    }

    fn check_string(&self, field: Field, v: &Json<'de>, min: usize, max: usize) -> Check<Cow<'de, str>> {
        let s = v.text().ok_or_else(|| schema(format!("`{}` must be a string, got {}", self.name(field), v.kind())))?;
        // A character is 1 to 4 bytes: the characters are counted only when the byte length
        // does not settle it.
        let settled = s.len() <= max && s.len().div_ceil(4) >= min;
        if !settled {
            let n = s.chars().count();
            if n < min || n > max {
                return Err(schema(format!("`{}` must be {min}-{max} characters, got {n}", self.name(field))));
            }
        }
        Ok(s)
    }

    fn upper_code(&self, field: Field, len: usize, standard: &str) -> Check<Cow<'de, str>> {
        let v = self.required(field)?;
        let s = v.text().ok_or_else(|| schema(format!("`{}` must be a string, got {}", self.name(field), v.kind())))?;
        if s.len() != len || !s.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(schema(format!(
                "`{}` must be {len} upper-case ASCII letters ({standard}), got {}",
                self.name(field),
                preview(&s)
            )));
        }
        Ok(s)
    }

    fn integer_value(&self, field: Field, v: &Json, min: i64, max: i64) -> Check<i64> {
        let name = || self.name(field);
        let Json::Number(n) = v else {
            return Err(schema(format!("`{}` must be an integer, got {}", name(), v.kind())));
        };
        let i = match n.as_i64() {
            Some(i) => i,
            // The parser reads `-0` (an integer in JSON's grammar) as the float -0.0.
            None if n.as_f64().is_some_and(|f| f == 0.0 && f.is_sign_negative()) => 0,
            None if n.is_u64() => {
                return Err(schema(format!("`{}` = {n} does not fit a signed 64-bit integer", name())))
            }
            None => {
                return Err(schema(format!(
                    "`{}` must be an integer, got {n} (a fraction or exponent is not allowed)",
                    name()
                )))
            }
        };
        if i < min || i > max {
            return Err(schema(format!("`{}` must be in {min}..={max}, got {i}", name())));
        }
        Ok(i)
    }

    fn integer(&self, field: Field, min: i64, max: i64) -> Check<i64> {
        let v = self.required(field)?;
        self.integer_value(field, v, min, max)
    }

    fn optional_money(&self, field: Field) -> Check<i64> {
        match self.get(field) {
            None => Ok(0),
            Some(v) => self.integer_value(field, v, 0, i64::MAX),
        }
    }

    fn money(&self, field: Field) -> Check<i64> {
        self.integer(field, 0, i64::MAX)
    }

    fn quantity(&self, field: Field) -> Check<i32> {
        // In range 1..=10,000, so the conversion cannot fail.
        Ok(self.integer(field, 1, MAX_QUANTITY)? as i32)
    }
}

/// At most 40 characters of a value, for error messages.
fn preview(s: &str) -> String {
    let mut p: String = s.chars().take(40).collect();
    if p.len() < s.len() {
        p.push('…');
    }
    format!("{p:?}")
}

/// Validates one record's data against contract section 1. `arrival_ms` is the record's
/// `approximateArrivalTimestamp` in UTC milliseconds (for the event-time range check).
pub fn validate(data: &[u8], arrival_ms: i64) -> Result<Event<'_>, Rejection> {
    // 1. invalid_encoding
    if data.starts_with(&KPL_MAGIC) {
        return Err(Rejection::new(
            ReasonCode::InvalidEncoding,
            "KPL-aggregated record (magic F3 89 9A C2) inside a KPL aggregate: aggregates do not nest",
        ));
    }
    // Checked with SIMD; the `compat` check says where a text goes wrong, as the standard one does.
    let text = simdutf8::compat::from_utf8(data).map_err(|e| {
        Rejection::new(
            ReasonCode::InvalidEncoding,
            format!("data is not valid UTF-8: invalid byte sequence at byte offset {}", e.valid_up_to()),
        )
    })?;

    // 2. invalid_json
    let invalid_json = |reason: String| Rejection::new(ReasonCode::InvalidJson, reason);
    if text.trim().is_empty() {
        return Err(invalid_json("record data is empty".into()));
    }
    let mut f = Fields::new(None);
    json::parse_object(text, MAX_JSON_DEPTH, slot, &mut f.slots)
        .map_err(|e| match e {
            ParseError::TooDeep => invalid_json(format!("JSON nests deeper than {MAX_JSON_DEPTH} levels")),
            ParseError::Syntax(e) => invalid_json(format!("not parseable as JSON: {e}")),
        })?
        .map_err(|value| invalid_json(format!("expected a JSON object, got {}", value.kind())))?;

    // 3. unknown_event_type (a missing event_type is a schema violation)
    let type_value = f.required(Field::EventType)?;
    let event_type = type_value.as_str().and_then(|s| s.parse::<EventType>().ok()).ok_or_else(|| {
        let got = match type_value.as_str() {
            Some(s) => preview(s),
            None => type_value.kind().to_string(),
        };
        Rejection::new(ReasonCode::UnknownEventType, format!("`event_type` {got} is not one of the six event types"))
    })?;

    // 4. schema_violation
    let event_id = f.string(Field::EventId, 1, 64)?;
    if !event_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        return Err(schema(format!("`event_id` {} may only contain A-Z a-z 0-9 _ -", preview(&event_id))));
    }
    let time_value = f.required(Field::EventTime)?;
    let time_text = time_value
        .text()
        .ok_or_else(|| schema(format!("`event_time` must be an RFC 3339 string, got {}", time_value.kind())))?;
    let event_time = parse_rfc3339(&time_text)
        .map_err(|e| schema(format!("`event_time` {} is not RFC 3339: {e}", preview(&time_text))))?;
    let session_id = f.string(Field::SessionId, 1, 128)?;
    let customer_id = match f.get(Field::CustomerId) {
        None | Some(Json::Null) => None,
        Some(v) => Some(f.check_string(Field::CustomerId, v, 1, 128)?),
    };
    let country = f.upper_code(Field::Country, 2, "ISO 3166-1 alpha-2")?;
    let device = f.string(Field::Device, 1, 32)?;

    let mut event = Event::new(event_id, event_type, event_time.millis, session_id, customer_id, country, device);
    match event_type {
        EventType::PageView => event.page = Some(f.string(Field::Page, 1, 2048)?),
        t if t.is_product_event() => {
            event.product_id = Some(f.string(Field::ProductId, 1, 128)?);
            event.category = Some(f.string(Field::Category, 1, 128)?);
            event.unit_price_minor = Some(f.money(Field::UnitPriceMinor)?);
            event.currency = Some(f.upper_code(Field::Currency, 3, "ISO 4217")?);
            if t.is_cart_event() {
                event.quantity = Some(f.quantity(Field::Quantity)?);
            }
        }
        EventType::CheckoutStarted => {
            event.cart_value_minor = Some(f.money(Field::CartValueMinor)?);
            event.currency = Some(f.upper_code(Field::Currency, 3, "ISO 4217")?);
        }
        _ => {
            let order_id = f.string(Field::OrderId, 1, 128)?;
            event.currency = Some(f.upper_code(Field::Currency, 3, "ISO 4217")?);
            let items = parse_items(f.take(Field::Items)?)?;
            let mut order = Order {
                order_id,
                total_minor: f.money(Field::TotalMinor)?,
                discount_minor: f.optional_money(Field::DiscountMinor)?,
                shipping_minor: f.optional_money(Field::ShippingMinor)?,
                tax_minor: f.optional_money(Field::TaxMinor)?,
                items,
            };
            // 5. inconsistent_total
            check_total(&mut order)?;
            event.order = Some(order);
        }
    }

    // 6. event_time_out_of_range
    if event_time.millis < EARLIEST_EVENT_TIME_MS {
        return Err(Rejection::new(
            ReasonCode::EventTimeOutOfRange,
            format!("`event_time` {} is before 2000-01-01T00:00:00Z", preview(&time_text)),
        ));
    }
    let limit = arrival_ms.saturating_add(MAX_FUTURE_SKEW_MS);
    if event_time.millis > limit || (event_time.millis == limit && event_time.sub_milli_nanos > 0) {
        return Err(Rejection::new(
            ReasonCode::EventTimeOutOfRange,
            format!(
                "`event_time` {} is more than 5 minutes after the record's arrival at {}",
                preview(&time_text),
                format_millis(arrival_ms)
            ),
        ));
    }
    Ok(event)
}

/// Items are validated in full (schema) before any total is computed, so that a schema error in
/// a later item wins over an overflow in an earlier one. The line totals are checked later.
fn parse_items(v: Json<'_>) -> Check<Vec<Item<'_>>> {
    let Json::Array(raw) = v else {
        return Err(schema(format!("`items` must be an array, got {}", v.kind())));
    };
    if raw.is_empty() || raw.len() > MAX_ITEMS {
        return Err(schema(format!("`items` must hold 1-{MAX_ITEMS} items, got {}", raw.len())));
    }
    raw.into_iter()
        .enumerate()
        .map(|(i, item)| {
            let Json::Object(obj) = item else {
                return Err(schema(format!("`items[{i}]` must be an object, got {}", item.kind())));
            };
            let mut f = Fields::new(Some(i));
            obj.into_slots(slot, &mut f.slots);
            Ok(Item {
                product_id: f.string(Field::ProductId, 1, 128)?,
                category: f.string(Field::Category, 1, 128)?,
                quantity: f.quantity(Field::Quantity)?,
                unit_price_minor: f.money(Field::UnitPriceMinor)?,
                line_total_minor: 0,
            })
        })
        .collect()
}

/// `total_minor == sum(quantity * unit_price_minor) - discount + shipping + tax`, every step in
/// checked 64-bit arithmetic, left to right. Fills in each item's line total.
fn check_total(order: &mut Order<'_>) -> Check<()> {
    let overflow = |what: String| {
        Rejection::new(ReasonCode::InconsistentTotal, format!("{what} overflows a signed 64-bit integer"))
    };
    let mut sum: i64 = 0;
    for (i, item) in order.items.iter_mut().enumerate() {
        let line = i64::from(item.quantity)
            .checked_mul(item.unit_price_minor)
            .ok_or_else(|| overflow(format!("items[{i}] quantity * unit_price_minor")))?;
        item.line_total_minor = line;
        sum = sum.checked_add(line).ok_or_else(|| overflow("the sum of line totals".into()))?;
    }
    let expected = sum
        .checked_sub(order.discount_minor)
        .and_then(|v| v.checked_add(order.shipping_minor))
        .and_then(|v| v.checked_add(order.tax_minor))
        .ok_or_else(|| overflow("items - discount + shipping + tax".into()))?;
    if expected != order.total_minor {
        return Err(Rejection::new(
            ReasonCode::InconsistentTotal,
            format!(
                "`total_minor` is {} but items {} - discount {} + shipping {} + tax {} = {}",
                order.total_minor, sum, order.discount_minor, order.shipping_minor, order.tax_minor, expected
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Field;

    #[test]
    fn each_field_is_at_its_own_index_and_is_the_field_of_its_key() {
        for (i, &field) in Field::ALL.iter().enumerate() {
            assert_eq!(field as usize, i, "{field:?}");
            assert_eq!(Field::of(field.key()), Some(field));
        }
        for other in ["event_Id", "", "event_id ", "item", "items.quantity", "taxminor"] {
            assert_eq!(Field::of(other), None, "{other}");
        }
    }
}
