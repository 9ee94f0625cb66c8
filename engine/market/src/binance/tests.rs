use super::*;

fn trade(event: MarketEvent) -> Trade {
    match event {
        MarketEvent::Trade(t) => t,
        other => panic!("not a trade: {other:?}"),
    }
}

#[test]
fn websocket_trades_and_aggregate_trades() {
    let t = trade(
        ws_message(r#"{"e":"trade","E":1672515782136,"s":"BNBBTC","t":12345,"p":"0.001","q":"100","T":1672515782136,"m":true,"M":true}"#)
            .unwrap(),
    );
    assert_eq!(
        t,
        Trade {
            time: 1_672_515_782_136_000_000,
            symbol: "BNBBTC".into(),
            id: Some(12345),
            price: 0.001,
            qty: 100.0,
            side: Side::Sell,
        }
    );
    let a = trade(
        ws_message(r#"{"e":"aggTrade","E":1672515782136,"s":"BNBBTC","a":12345,"p":"0.002","q":"5","f":100,"l":105,"T":1672515782136,"m":false,"M":true}"#)
            .unwrap(),
    );
    assert_eq!((a.id, a.side, a.price), (Some(100), Side::Buy, 0.002));
    let event = MarketEvent::Trade(a);
    assert_eq!(
        event.fields(),
        [
            ("price", 0.002),
            ("qty", 5.0),
            ("side", 1.0),
            ("notional", 0.01)
        ]
    );
}

#[test]
fn websocket_klines_book_tickers_depth_and_combined_streams() {
    let k = ws_message(r#"{"e":"kline","E":1672515782136,"s":"BNBBTC","k":{"t":1672515780000,"T":1672515839999,"s":"BNBBTC","i":"1m","f":100,"L":200,"o":"0.0016","c":"0.0020","h":"0.0025","l":"0.0015","v":"1000","n":100,"x":false,"q":"1.0000","V":"500","Q":"0.500","B":"123456"}}"#).unwrap();
    let MarketEvent::Kline(k) = k else { panic!() };
    assert_eq!(
        (k.open_time, k.close, k.closed, k.trades),
        (1_672_515_780_000_000_000, 0.002, false, Some(100))
    );

    let b = ws_message(r#"{"u":400900217,"s":"BNBUSDT","b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}"#).unwrap();
    let fields = b.fields();
    assert_eq!(fields[0], ("bid", 25.3519));
    assert!((fields[5].1 - 0.0133).abs() < 1e-12, "{fields:?}");
    assert_eq!(b.time(), None);

    let d = ws_message(r#"{"e":"depthUpdate","E":1672515782136,"s":"BNBBTC","U":157,"u":160,"b":[["0.0024","10"]],"a":[["0.0026","100"],["0.0027","0"]]}"#).unwrap();
    let MarketEvent::Depth(d) = d else { panic!() };
    assert_eq!((d.first_update_id, d.last_update_id), (157, 160));
    assert_eq!(d.asks, [(0.0026, 100.0), (0.0027, 0.0)]);

    let wrapped = ws_message(r#"{"stream":"bnbbtc@trade","data":{"e":"trade","E":1,"s":"BNBBTC","t":1,"p":"1","q":"1","T":1672515782136,"m":false,"M":true}}"#).unwrap();
    assert_eq!(wrapped.symbol(), "BNBBTC");
}

#[test]
fn bad_messages_are_refused_with_what_is_wrong() {
    let good =
        r#"{"e":"trade","E":1,"s":"X","t":1,"p":"1","q":"1","T":1672515782136,"m":false,"M":true}"#;
    let cases: Vec<(String, &str)> = vec![
        ("not json".into(), "not a message"),
        (good[..good.len() / 2].into(), "not a message"),
        ("[1, 2]".into(), "JSON object"),
        (
            good.replace(r#""p":"1""#, r#""p":"0""#),
            "`p`: `0` must be above 0",
        ),
        (
            good.replace(r#""p":"1""#, r#""p":"-2.5""#),
            "must be above 0",
        ),
        (
            good.replace(r#""p":"1""#, r#""p":"NaN""#),
            "not a finite number",
        ),
        (
            good.replace(r#""p":"1""#, r#""p":"1e400""#),
            "not a finite number",
        ),
        (good.replace(r#""q":"1""#, r#""q":"abc""#), "`q`: `abc`"),
        (good.replace(r#""p":"1","#, ""), "field `p` is missing"),
        (good.replace(r#""s":"X""#, r#""s":"""#), "not a symbol"),
        (
            good.replace(r#""T":1672515782136"#, r#""T":-5"#),
            "not a time",
        ),
        (
            good.replace(r#""m":false"#, r#""m":"yes""#),
            "not true or false",
        ),
        (
            good.replace(r#""e":"trade""#, r#""e":"24hrTicker""#),
            "`24hrTicker` messages are not read",
        ),
        (
            r#"{"u":1,"s":"X","b":"2","B":"1","a":"1","A":"1"}"#.into(),
            "crossed",
        ),
        (
            r#"{"e":"depthUpdate","E":1,"s":"X","U":10,"u":9,"b":[],"a":[]}"#.into(),
            "below the first update id",
        ),
        (
            r#"{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[["1","-1"]],"a":[]}"#.into(),
            "must not be negative",
        ),
        (
            r#"{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[["1"]],"a":[]}"#.into(),
            "[price, size]",
        ),
        (r#"{"stream":"x@trade"}"#.into(), "field `data` is missing"),
        (r#"{"a": 1}"#.into(), "no event type"),
    ];
    for (message, want) in cases {
        let err = ws_message(&message).unwrap_err().to_string();
        assert!(err.contains(want), "{message}: {err}");
    }
}

#[test]
fn rest_klines_are_read_and_checked() {
    let text = r#"[[1499040000000,"0.01634790","0.80000000","0.01575800","0.01577100","148976.11427815",1499644799999,"2434.19055334",308,"1756.87402397","28.46694368","0"],
                   [1499040060000,"0.01577100","0.01580000","0.01570000","0.01575000","10.5",1499644859999,"0.16",3,"5","0.08","0"]]"#;
    let klines = rest_klines("ETHBTC", text).unwrap();
    assert_eq!(klines.len(), 2);
    assert_eq!(
        (klines[0].high, klines[0].trades, klines[1].close),
        (0.8, Some(308), 0.01575)
    );
    let inverted = text.replace("\"0.80000000\"", "\"0.001\"");
    assert!(rest_klines("ETHBTC", &inverted)
        .unwrap_err()
        .to_string()
        .contains("does not bound"));
    assert!(rest_klines("ETHBTC", "{}").is_err());
    assert!(rest_klines("ETHBTC", "[[1, \"1\"]]")
        .unwrap_err()
        .to_string()
        .contains("12 fields"));
}

#[test]
fn bulk_files_with_or_without_a_header_in_milli_or_microseconds() {
    let ms = csv_line(
        BulkFile::Trades,
        "BTCUSDT",
        "1000,43000.5,0.01,430.005,1704067200000,True,True",
    )
    .unwrap()
    .unwrap();
    let us = csv_line(
        BulkFile::Trades,
        "BTCUSDT",
        "1000,43000.5,0.01,430.005,1704067200000000,True,True",
    )
    .unwrap()
    .unwrap();
    assert_eq!(ms, us, "2025's microseconds read as the same time");
    assert_eq!(trade(ms).side, Side::Sell);
    assert_eq!(
        csv_line(
            BulkFile::Trades,
            "BTCUSDT",
            "id,price,qty,quote_qty,time,is_buyer_maker,is_best_match"
        )
        .unwrap(),
        None
    );
    assert_eq!(csv_line(BulkFile::Trades, "BTCUSDT", "  ").unwrap(), None);
    let agg = trade(
        csv_line(
            BulkFile::AggTrades,
            "BTCUSDT",
            "26129,0.01633102,4.70443515,27781,27781,1498793709153,false,true",
        )
        .unwrap()
        .unwrap(),
    );
    assert_eq!((agg.id, agg.side), (Some(27781), Side::Buy));
    let k = csv_line(BulkFile::Klines, "BTCUSDT", "1704067200000,42283.58,42298.62,42261.02,42298.61,35.92724,1704067259999,1519032.3,1327,23.13239,978074.6,0").unwrap().unwrap();
    assert_eq!(k.fields()[3], ("close", 42298.61));
    for (line, want) in [
        ("1000,43000.5,0.01", "3 fields"),
        ("1000,0,0.01,0,1704067200000,True,True", "must be above 0"),
        (
            "1000,1,0.01,0,1704067200000,maybe,True",
            "not true or false",
        ),
        (
            "x1000,1,0.01,0,1704067200000,True,True",
            "not a whole number",
        ),
    ] {
        let err = csv_line(BulkFile::Trades, "BTCUSDT", line)
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{line}: {err}");
    }
}

#[test]
fn epoch_times_in_every_unit() {
    let ns = 1_704_067_200_000_000_000;
    for value in [1_704_067_200, 1_704_067_200_000, 1_704_067_200_000_000, ns] {
        assert_eq!(epoch_ns("t", value).unwrap(), ns, "{value}");
    }
    assert!(epoch_ns("t", -1).is_err());
}

#[test]
fn feeds_read_lines_and_files_name_their_market() {
    assert_eq!(
        crate::symbol_of_file("data/BTCUSDT-trades-2024-01-01.csv"),
        Some("BTCUSDT")
    );
    assert_eq!(
        crate::symbol_of_file("ETHBTC-1m-2024-01.csv.gz"),
        Some("ETHBTC")
    );
    assert_eq!(crate::symbol_of_file("trades.csv"), None);
    let feed = crate::Feed::BinanceTrades;
    let event = feed
        .read_line("BTCUSDT", "1,2.5,3,7.5,1704067200000,false,true")
        .unwrap()
        .unwrap();
    assert_eq!(event.field_names().len(), event.fields().len());
    assert_eq!(crate::Feed::BinanceWs.read_line("", "  ").unwrap(), None);
}
