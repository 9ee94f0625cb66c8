//! The one shape every format is read into.

/// Who took the trade: the buyer (an aggressive buy) or the seller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The taker bought.
    Buy,
    /// The taker sold.
    Sell,
}

impl Side {
    /// +1 for a buy, −1 for a sell: the `side` field rules read (a sum is net flow).
    pub fn sign(self) -> f64 {
        match self {
            Side::Buy => 1.0,
            Side::Sell => -1.0,
        }
    }
}

/// A fill.
#[derive(Debug, Clone, PartialEq)]
pub struct Trade {
    /// Trade time, ns since the epoch.
    pub time: i64,
    /// The market, as the exchange names it (`BTCUSDT`).
    pub symbol: String,
    /// The exchange's trade id (the first of an aggregate trade's), when it gives one.
    pub id: Option<u64>,
    /// Price, > 0.
    pub price: f64,
    /// Size in the base asset, > 0.
    pub qty: f64,
    /// The taker's side.
    pub side: Side,
}

/// A candle.
#[derive(Debug, Clone, PartialEq)]
pub struct Kline {
    /// Open time, ns since the epoch.
    pub open_time: i64,
    /// The market.
    pub symbol: String,
    /// Open, high, low and close prices, > 0.
    pub open: f64,
    /// High.
    pub high: f64,
    /// Low.
    pub low: f64,
    /// Close.
    pub close: f64,
    /// Base-asset volume, ≥ 0.
    pub volume: f64,
    /// Quote-asset volume, ≥ 0, when given.
    pub quote_volume: Option<f64>,
    /// Trades in the candle, when given.
    pub trades: Option<u64>,
    /// Whether the candle is closed (a live stream sends it while it forms).
    pub closed: bool,
}

/// The best bid and ask.
#[derive(Debug, Clone, PartialEq)]
pub struct BookTicker {
    /// Event time when the message has one, ns.
    pub time: Option<i64>,
    /// The market.
    pub symbol: String,
    /// The book's update id.
    pub update_id: u64,
    /// Best bid price and size.
    pub bid: f64,
    /// Size at the best bid.
    pub bid_qty: f64,
    /// Best ask price.
    pub ask: f64,
    /// Size at the best ask.
    pub ask_qty: f64,
}

/// Levels of one side of a book: (price, size); a size of 0 removes the level.
pub type Book = Vec<(f64, f64)>;

/// A diff of a depth book, with the update ids that chain diffs (`first` must follow
/// the last diff's `last`, or a gap was missed).
#[derive(Debug, Clone, PartialEq)]
pub struct DepthUpdate {
    /// Event time, ns.
    pub time: i64,
    /// The market.
    pub symbol: String,
    /// The first update id in the diff (Binance's `U`).
    pub first_update_id: u64,
    /// The last (Binance's `u`).
    pub last_update_id: u64,
    /// Bid levels changed.
    pub bids: Book,
    /// Ask levels changed.
    pub asks: Book,
}

/// Anything a market feed says.
#[derive(Debug, Clone, PartialEq)]
pub enum MarketEvent {
    /// A fill.
    Trade(Trade),
    /// A candle.
    Kline(Kline),
    /// The best bid and ask.
    BookTicker(BookTicker),
    /// A diff of the depth book.
    Depth(DepthUpdate),
}

impl MarketEvent {
    /// The market it is about.
    pub fn symbol(&self) -> &str {
        match self {
            MarketEvent::Trade(t) => &t.symbol,
            MarketEvent::Kline(k) => &k.symbol,
            MarketEvent::BookTicker(b) => &b.symbol,
            MarketEvent::Depth(d) => &d.symbol,
        }
    }

    /// Its time, ns (a candle's open time), if it has one.
    pub fn time(&self) -> Option<i64> {
        match self {
            MarketEvent::Trade(t) => Some(t.time),
            MarketEvent::Kline(k) => Some(k.open_time),
            MarketEvent::BookTicker(b) => b.time,
            MarketEvent::Depth(d) => Some(d.time),
        }
    }

    /// The names of [`fields`](Self::fields), the same for every event of a kind (a
    /// candle without quote volume or trade count gives NaN for them).
    pub fn field_names(&self) -> &'static [&'static str] {
        match self {
            MarketEvent::Trade(_) => &["price", "qty", "side", "notional"],
            MarketEvent::Kline(_) => &[
                "open",
                "high",
                "low",
                "close",
                "volume",
                "quote_volume",
                "trades",
            ],
            MarketEvent::BookTicker(_) => &["bid", "bid_qty", "ask", "ask_qty", "mid", "spread"],
            MarketEvent::Depth(_) => &[],
        }
    }

    /// The kind's name, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            MarketEvent::Trade(_) => "trade",
            MarketEvent::Kline(_) => "kline",
            MarketEvent::BookTicker(_) => "book ticker",
            MarketEvent::Depth(_) => "depth update",
        }
    }

    /// The named fields rules read: a trade's `price`, `qty`, `side` (+1/−1) and
    /// `notional`; a candle's `open`, `high`, `low`, `close`, `volume`, `quote_volume`
    /// and `trades` (NaN when not given); a book ticker's `bid`, `bid_qty`, `ask`,
    /// `ask_qty`, `mid` and `spread`. A depth diff has no fields of its own: a book built
    /// from it does.
    pub fn fields(&self) -> Vec<(&'static str, f64)> {
        match self {
            MarketEvent::Trade(t) => vec![
                ("price", t.price),
                ("qty", t.qty),
                ("side", t.side.sign()),
                ("notional", t.price * t.qty),
            ],
            MarketEvent::Kline(k) => {
                let mut fields = vec![
                    ("open", k.open),
                    ("high", k.high),
                    ("low", k.low),
                    ("close", k.close),
                    ("volume", k.volume),
                ];
                fields.push(("quote_volume", k.quote_volume.unwrap_or(f64::NAN)));
                fields.push(("trades", k.trades.map_or(f64::NAN, |n| n as f64)));
                fields
            }
            MarketEvent::BookTicker(b) => vec![
                ("bid", b.bid),
                ("bid_qty", b.bid_qty),
                ("ask", b.ask),
                ("ask_qty", b.ask_qty),
                ("mid", (b.bid + b.ask) / 2.0),
                ("spread", b.ask - b.bid),
            ],
            MarketEvent::Depth(_) => Vec::new(),
        }
    }
}
