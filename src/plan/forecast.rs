//! The forecast: a day's shape times a level, both read from the history, explainable line by
//! line.
//!
//! - **Level**: each complete day's total. With two weeks or more, a factor per weekday: how far
//!   that weekday's days sit from the 7-day average around them, on average (classical
//!   decomposition). The trend: a straight line fitted by least squares to the last four weeks
//!   of totals divided by their weekday's factor.
//! - **Shape**: for each minute of the day, its share of its day's total, the median over the
//!   last two weeks (per weekday with two weeks or more). A spike that recurs at the same minute
//!   (a flash sale every hour, a Friday promotion) is in the median; a one-off is not.
//! - **Forecast** of a minute: the level of its day times its weekday's factor times its share.

/// Minutes in a day.
pub const DAY: usize = 1440;
pub const DAY_MS: i64 = 86_400_000;
/// Days of history the trend is fitted to, and the shape is the median of.
const TREND_DAYS: usize = 28;
const SHAPE_DAYS: usize = 14;

/// Records per minute from `start_ms`, a UTC midnight, for whole days.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    pub start_ms: i64,
    pub per_minute: Vec<f64>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ForecastError {
    #[error(
        "the history holds {0} complete day(s) of traffic: the planner needs at least 2 (a day's shape and a level)"
    )]
    TooShort(usize),
    #[error("the history holds no records")]
    Empty,
}

impl History {
    /// The whole UTC days of `counts` (minute start in ms, records), missing minutes as 0:
    /// the first partial day and the last partial day are left out.
    pub fn from_minutes(counts: impl IntoIterator<Item = (i64, f64)>) -> Result<History, ForecastError> {
        let counts: std::collections::BTreeMap<i64, f64> =
            counts.into_iter().fold(Default::default(), |mut m, (t, n)| {
                *m.entry(t.div_euclid(60_000) * 60_000).or_default() += n;
                m
            });
        let (Some((&first, _)), Some((&last, _))) = (counts.first_key_value(), counts.last_key_value()) else {
            return Err(ForecastError::Empty);
        };
        // A day counts if it starts at or after the first minute and ends before the last one.
        let start = if first.rem_euclid(DAY_MS) == 0 { first } else { first.div_euclid(DAY_MS) * DAY_MS + DAY_MS };
        let end = (last + 60_000).div_euclid(DAY_MS) * DAY_MS;
        let days = if end > start { ((end - start) / DAY_MS) as usize } else { 0 };
        if days < 2 {
            return Err(ForecastError::TooShort(days));
        }
        let per_minute =
            (0..days * DAY).map(|m| counts.get(&(start + m as i64 * 60_000)).copied().unwrap_or(0.0)).collect();
        Ok(History { start_ms: start, per_minute })
    }

    pub fn days(&self) -> usize {
        self.per_minute.len() / DAY
    }

    fn day(&self, d: usize) -> &[f64] {
        &self.per_minute[d * DAY..(d + 1) * DAY]
    }

    /// The history without its last `days` days (to test a forecast against them).
    pub fn without_last(&self, days: usize) -> (History, History) {
        let cut = self.per_minute.len() - days * DAY;
        let kept = History { start_ms: self.start_ms, per_minute: self.per_minute[..cut].to_vec() };
        let held = History {
            start_ms: self.start_ms + (cut / DAY) as i64 * DAY_MS,
            per_minute: self.per_minute[cut..].to_vec(),
        };
        (kept, held)
    }
}

/// What the model read from the history.
#[derive(Debug, Clone)]
pub struct Model {
    start_ms: i64,
    days: usize,
    /// Daily total at day 0 and its change per day.
    intercept: f64,
    slope: f64,
    /// Per weekday (0 = Thursday, the weekday of 1970-01-01): level factor and the day's shape.
    weekday_factor: [f64; 7],
    shape: Vec<Vec<f64>>,
}

fn weekday(day_start_ms: i64) -> usize {
    day_start_ms.div_euclid(DAY_MS).rem_euclid(7) as usize
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

impl Model {
    pub fn fit(h: &History) -> Result<Model, ForecastError> {
        let days = h.days();
        if days < 2 {
            return Err(ForecastError::TooShort(days));
        }
        let totals: Vec<f64> = (0..days).map(|d| h.day(d).iter().sum()).collect();
        if totals.iter().all(|t| *t <= 0.0) {
            return Err(ForecastError::Empty);
        }
        let weekly = days >= 14;
        let day_start = |d: usize| h.start_ms + d as i64 * DAY_MS;
        // Weekday factors (classical decomposition): each day against the 7-day average centred
        // on it, averaged per weekday, scaled to a mean of 1.
        let mut weekday_factor = [1.0; 7];
        if weekly {
            let mut sums = [(0.0, 0usize); 7];
            for d in 3..days - 3 {
                let average = totals[d - 3..=d + 3].iter().sum::<f64>() / 7.0;
                if average > 0.0 {
                    let w = weekday(day_start(d));
                    sums[w] = (sums[w].0 + totals[d] / average, sums[w].1 + 1);
                }
            }
            for (w, (sum, count)) in sums.iter().enumerate() {
                if *count > 0 {
                    weekday_factor[w] = sum / *count as f64;
                }
            }
            let mean = weekday_factor.iter().sum::<f64>() / 7.0;
            weekday_factor.iter_mut().for_each(|f| *f /= mean);
        }
        // The trend: least squares over the last four weeks of totals without their weekday.
        let first = days.saturating_sub(TREND_DAYS);
        let xs: Vec<f64> = (first..days).map(|d| d as f64).collect();
        let ys: Vec<f64> = (first..days).map(|d| totals[d] / weekday_factor[weekday(day_start(d))]).collect();
        let n = xs.len() as f64;
        let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
        let sxx: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
        let sxy: f64 = xs.iter().zip(&ys).map(|(x, y)| (x - mx) * (y - my)).sum();
        let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
        let intercept = my - slope * mx;
        // The shape: each minute's share of its day, the median over recent days (of the same
        // weekday when there are two weeks).
        let recent: Vec<usize> = (days.saturating_sub(SHAPE_DAYS)..days).filter(|d| totals[*d] > 0.0).collect();
        let shape_of = |days: &[usize]| -> Vec<f64> {
            let mut shape: Vec<f64> = (0..DAY)
                .map(|m| median(&mut days.iter().map(|&d| h.day(d)[m] / totals[d]).collect::<Vec<_>>()))
                .collect();
            let sum: f64 = shape.iter().sum();
            if sum > 0.0 {
                shape.iter_mut().for_each(|s| *s /= sum);
            }
            shape
        };
        let all = shape_of(&recent);
        let shape = (0..7)
            .map(|w| {
                let same: Vec<usize> = recent.iter().copied().filter(|&d| weekday(day_start(d)) == w).collect();
                if weekly && same.len() >= 2 {
                    shape_of(&same)
                } else {
                    all.clone()
                }
            })
            .collect();
        Ok(Model { start_ms: h.start_ms, days, intercept, slope, weekday_factor, shape })
    }

    /// Records per minute of the `days` days after the history.
    pub fn forecast(&self, days: usize) -> History {
        let start_ms = self.start_ms + self.days as i64 * DAY_MS;
        let per_minute = (0..days)
            .flat_map(|j| {
                let d = self.days + j;
                let w = weekday(start_ms + j as i64 * DAY_MS);
                let total = (self.intercept + self.slope * d as f64).max(0.0) * self.weekday_factor[w];
                self.shape[w].iter().map(move |s| total * s)
            })
            .collect();
        History { start_ms, per_minute }
    }

    /// The daily trend (records per day, and its change per day) and the weekday factors.
    pub fn level(&self) -> (f64, f64, [f64; 7]) {
        (self.intercept + self.slope * self.days as f64, self.slope, self.weekday_factor)
    }
}

/// Mean absolute percentage error of `forecast` against `actual`, per hour (hours with no
/// actual records left out).
pub fn hourly_mape(forecast: &History, actual: &History) -> f64 {
    let hours = |h: &History| -> Vec<f64> { h.per_minute.chunks(60).map(|c| c.iter().sum()).collect() };
    let (f, a) = (hours(forecast), hours(actual));
    let errors: Vec<f64> = f.iter().zip(&a).filter(|(_, a)| **a > 0.0).map(|(f, a)| (f - a).abs() / a).collect();
    if errors.is_empty() {
        return 0.0;
    }
    errors.iter().sum::<f64>() / errors.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIDNIGHT: i64 = 1_795_392_000_000; // 2026-11-23T00:00:00Z, a Monday

    #[test]
    fn whole_days_only() {
        // From 12:00 on day 0 to 11:59 on day 3: days 1 and 2 are whole.
        let minutes = (12 * 60..3 * DAY as i64 + 12 * 60).map(|m| (MIDNIGHT + m * 60_000, 1.0));
        let h = History::from_minutes(minutes).unwrap();
        assert_eq!((h.start_ms, h.days()), (MIDNIGHT + DAY_MS, 2));
        let short = (0..DAY as i64 + 10).map(|m| (MIDNIGHT + m * 60_000, 1.0));
        assert_eq!(History::from_minutes(short), Err(ForecastError::TooShort(1)));
        assert_eq!(History::from_minutes(Vec::new()), Err(ForecastError::Empty));
    }

    #[test]
    fn a_repeating_day_with_a_trend_and_a_weekend_is_forecast_exactly() {
        // Three weeks: a day shaped like a ramp, growing 1% of its first total a day, weekends
        // (Saturday, Sunday) at half.
        let days = 21;
        let per_minute = (0..days * DAY)
            .map(|i| {
                let (d, m) = (i / DAY, i % DAY);
                let w = weekday(MIDNIGHT + d as i64 * DAY_MS);
                let weekend = if w == 2 || w == 3 { 0.5 } else { 1.0 };
                (1.0 + m as f64) * (1.0 + 0.01 * d as f64) * weekend
            })
            .collect();
        let h = History { start_ms: MIDNIGHT, per_minute };
        let (train, held) = h.without_last(7);
        let f = Model::fit(&train).unwrap().forecast(7);
        assert_eq!(f.start_ms, held.start_ms);
        assert!(hourly_mape(&f, &held) < 0.02, "{}", hourly_mape(&f, &held));
    }
}
