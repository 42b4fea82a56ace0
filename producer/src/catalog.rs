//! What the storefront sells and to whom: countries with their currencies and taxes, devices,
//! categories, and a product catalog whose popularity has a long tail.

use crate::rng::{cumulative, Rand};

pub struct Country {
    pub code: &'static str,
    pub currency: &'static str,
    /// Minor units of the currency per US cent (JPY has no minor unit).
    pub minor_per_usd_cent: f64,
    /// Sales tax or VAT in basis points.
    pub tax_bp: i64,
    pub weight: f64,
}

pub const COUNTRIES: [Country; 12] = [
    Country { code: "US", currency: "USD", minor_per_usd_cent: 1.0, tax_bp: 700, weight: 38.0 },
    Country { code: "DE", currency: "EUR", minor_per_usd_cent: 0.92, tax_bp: 1900, weight: 11.0 },
    Country { code: "GB", currency: "GBP", minor_per_usd_cent: 0.79, tax_bp: 2000, weight: 10.0 },
    Country { code: "FR", currency: "EUR", minor_per_usd_cent: 0.92, tax_bp: 2000, weight: 8.0 },
    Country { code: "JP", currency: "JPY", minor_per_usd_cent: 1.5, tax_bp: 1000, weight: 8.0 },
    Country { code: "CA", currency: "CAD", minor_per_usd_cent: 1.36, tax_bp: 1300, weight: 5.0 },
    Country { code: "ES", currency: "EUR", minor_per_usd_cent: 0.92, tax_bp: 2100, weight: 4.0 },
    Country { code: "IT", currency: "EUR", minor_per_usd_cent: 0.92, tax_bp: 2200, weight: 4.0 },
    Country { code: "NL", currency: "EUR", minor_per_usd_cent: 0.92, tax_bp: 2100, weight: 3.0 },
    Country { code: "AU", currency: "AUD", minor_per_usd_cent: 1.52, tax_bp: 1000, weight: 3.0 },
    Country { code: "BR", currency: "BRL", minor_per_usd_cent: 5.0, tax_bp: 1700, weight: 3.0 },
    Country { code: "IN", currency: "INR", minor_per_usd_cent: 83.0, tax_bp: 1800, weight: 3.0 },
];

pub const DEVICES: [(&str, f64); 4] = [("mobile", 55.0), ("desktop", 30.0), ("app", 10.0), ("tablet", 5.0)];

pub const CATEGORIES: [&str; 24] = [
    "shoes",
    "socks",
    "bags",
    "jackets",
    "shirts",
    "jeans",
    "dresses",
    "hats",
    "watches",
    "jewelry",
    "sunglasses",
    "electronics",
    "headphones",
    "phones",
    "laptops",
    "books",
    "toys",
    "games",
    "kitchen",
    "furniture",
    "garden",
    "beauty",
    "sports",
    "pets",
];

pub struct Product {
    pub id: String,
    pub category: &'static str,
    pub usd_cents: i64,
}

pub struct Catalog {
    pub products: Vec<Product>,
    /// Zipf-like popularity (weight 1 / rank^1.1): a few hits and a long tail.
    popularity: Vec<f64>,
    pub countries: Vec<f64>,
    pub devices: Vec<f64>,
}

impl Catalog {
    pub fn new(rng: &mut Rand, size: usize) -> Self {
        let products = (0..size)
            .map(|i| {
                // Log-uniform prices from $1.99 to $499.99.
                let usd_cents = (199.0 * (49_999.0f64 / 199.0).powf(rng.unit())).round() as i64;
                Product { id: format!("p-{i:05}"), category: CATEGORIES[rng.below(CATEGORIES.len())], usd_cents }
            })
            .collect();
        Catalog {
            products,
            popularity: cumulative((1..=size).map(|rank| 1.0 / (rank as f64).powf(1.1))),
            countries: cumulative(COUNTRIES.iter().map(|c| c.weight)),
            devices: cumulative(DEVICES.iter().map(|d| d.1)),
        }
    }

    pub fn pick_product(&self, rng: &mut Rand) -> usize {
        rng.pick(&self.popularity)
    }

    /// The product's price in the country's currency, in minor units.
    pub fn price(&self, product: usize, country: &Country) -> i64 {
        ((self.products[product].usd_cents as f64) * country.minor_per_usd_cent).round().max(1.0) as i64
    }
}
