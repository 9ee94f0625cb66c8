//! From the pest parse tree to the [`ast`](super::ast).

use std::sync::OnceLock;

use pest::iterators::Pair;
use pest::pratt_parser::{Assoc, Op, PrattParser};

use super::ast::*;
use super::syntax::{self, Rule, SyntaxError};

/// Parses the text of file `file` into its items.
///
/// # Errors
///
/// The first [`SyntaxError`] of the file.
pub fn parse_items(file: FileId, source: &str) -> Result<Vec<Item>, SyntaxError> {
    let mut pairs = syntax::parse(source)?;
    let lower = Lower { file };
    let root = pairs.next().expect("the grammar's root rule");
    Ok(root
        .into_inner()
        .filter(|p| p.as_rule() != Rule::EOI)
        .map(|p| lower.item(p))
        .collect())
}

struct Lower {
    file: FileId,
}

fn pratt() -> &'static PrattParser<Rule> {
    static PRATT: OnceLock<PrattParser<Rule>> = OnceLock::new();
    PRATT.get_or_init(|| {
        PrattParser::new()
            .op(Op::infix(Rule::add, Assoc::Left) | Op::infix(Rule::sub, Assoc::Left))
            .op(Op::infix(Rule::mul, Assoc::Left) | Op::infix(Rule::div, Assoc::Left))
            .op(Op::prefix(Rule::neg))
    })
}

impl Lower {
    /// The pair's place, without the whitespace pest keeps at the end of some rules.
    fn span(&self, p: &Pair<'_, Rule>) -> Span {
        let start = p.as_span().start();
        Span {
            file: self.file,
            start,
            end: start + p.as_str().trim_end().len(),
        }
    }

    fn name(&self, p: Pair<'_, Rule>) -> Name {
        Name {
            text: p.as_str().to_owned(),
            span: self.span(&p),
        }
    }

    fn names(&self, p: Pair<'_, Rule>) -> Vec<Name> {
        p.into_inner().map(|n| self.name(n)).collect()
    }

    fn item(&self, p: Pair<'_, Rule>) -> Item {
        let span = self.span(&p);
        let rule = p.as_rule();
        let mut inner = p.into_inner();
        match rule {
            Rule::include => Item::Include(string(inner.next().expect("path")), span),
            Rule::constant => {
                let name = self.name(inner.next().expect("name"));
                Item::Const(name, self.literal(inner.next().expect("literal")))
            }
            Rule::input => {
                let name = self.name(inner.next().expect("name"));
                let mut input = Input {
                    name,
                    time: None,
                    keys: Vec::new(),
                    fields: Vec::new(),
                    span,
                };
                for setting in inner {
                    let mut parts = setting.into_inner();
                    let key = parts.next().expect("key").as_str();
                    let names = self.names(parts.next().expect("names"));
                    match key {
                        "time" => input.time = names.into_iter().next(),
                        "key" => input.keys = names,
                        _ => input.fields.extend(names),
                    }
                }
                Item::Input(input)
            }
            Rule::feature => {
                let name = self.name(inner.next().expect("name"));
                Item::Feature(name, self.expr(inner.next().expect("expr")))
            }
            Rule::detector => Item::Detector(self.detector(inner, span)),
            Rule::ensemble => Item::Ensemble(self.ensemble(inner, span)),
            Rule::alert => Item::Alert(self.alert(inner, span)),
            Rule::test => Item::Test(self.test(inner, span)),
            other => unreachable!("the grammar has no item {other:?}"),
        }
    }

    fn detector(&self, mut inner: pest::iterators::Pairs<'_, Rule>, span: Span) -> DetectorDef {
        let name = self.name(inner.next().expect("name"));
        let mut qualified = inner.next().expect("family.detector").into_inner();
        let family = self.name(qualified.next().expect("family"));
        let detector = self.name(qualified.next().expect("detector"));
        let mut def = DetectorDef {
            name,
            family,
            detector,
            params: Vec::new(),
            inputs: Vec::new(),
            training: Vec::new(),
            threshold: None,
            span,
        };
        for p in inner {
            match p.as_rule() {
                Rule::params => def.params = self.params(p),
                Rule::kw_on => {}
                Rule::detector_inputs => {
                    let first = p.into_inner().next().expect("inputs");
                    def.inputs = match first.as_rule() {
                        Rule::ident_list => self.names(first),
                        _ => vec![self.name(first)],
                    };
                }
                Rule::training => {
                    let t = p.into_inner().next().expect("clause");
                    let span = self.span(&t);
                    let kind = t.as_rule();
                    let arg = t.into_inner().next().expect("argument");
                    def.training.push(match kind {
                        Rule::train_first => {
                            Training::First(arg.as_str().parse().unwrap_or(u64::MAX), span)
                        }
                        Rule::train_for => Training::For(duration(arg.as_str()), span),
                        _ => Training::Refit(duration(arg.as_str()), span),
                    });
                }
                Rule::threshold_by => {
                    let span = self.span(&p);
                    let mut parts = p.into_inner();
                    let mut qualified = parts.next().expect("family.detector").into_inner();
                    let family = self.name(qualified.next().expect("family"));
                    let detector = self.name(qualified.next().expect("detector"));
                    let params = parts.next().map(|p| self.params(p)).unwrap_or_default();
                    def.threshold = Some(ThresholdDef {
                        family,
                        detector,
                        params,
                        span,
                    });
                }
                other => unreachable!("unexpected {other:?} in a detector"),
            }
        }
        def
    }

    fn params(&self, p: pest::iterators::Pair<'_, Rule>) -> Vec<(Name, Value)> {
        p.into_inner()
            .map(|param| {
                let mut kv = param.into_inner();
                let key = self.name(kv.next().expect("param name"));
                (key, self.value(kv.next().expect("param value")))
            })
            .collect()
    }

    fn ensemble(&self, mut inner: pest::iterators::Pairs<'_, Rule>, span: Span) -> Ensemble {
        let name = self.name(inner.next().expect("name"));
        let vote_pair = inner.next().expect("vote");
        let vote_span = self.span(&vote_pair);
        let rule = vote_pair.into_inner().next().expect("vote rule");
        let (kind, members) = match rule.as_rule() {
            Rule::count_vote => {
                let mut parts = rule.into_inner();
                let kind = match parts.next().expect("kind").as_str() {
                    "any" => VoteKind::Any,
                    "all" => VoteKind::All,
                    _ => VoteKind::Majority,
                };
                (kind, self.names(parts.next().expect("members")))
            }
            Rule::at_least => {
                let mut parts = rule.into_inner();
                let k = self.value(parts.next().expect("k"));
                (
                    VoteKind::AtLeast(k),
                    self.names(parts.next().expect("members")),
                )
            }
            Rule::weighted => {
                let (mut weights, mut members, mut threshold) = (Vec::new(), Vec::new(), None);
                for part in rule.into_inner() {
                    match part.as_rule() {
                        Rule::weight => {
                            let mut kv = part.into_inner();
                            members.push(self.name(kv.next().expect("member")));
                            weights.push(self.value(kv.next().expect("weight")));
                        }
                        _ => threshold = Some(self.value(part)),
                    }
                }
                (
                    VoteKind::Weighted(weights, threshold.expect("threshold")),
                    members,
                )
            }
            Rule::score_vote => {
                let mut parts = rule.into_inner();
                let agg = match parts.next().expect("aggregate").as_str() {
                    "mean" => ScoreAgg::Mean,
                    "max" => ScoreAgg::Max,
                    _ => ScoreAgg::Median,
                };
                let members = self.names(parts.next().expect("members"));
                (
                    VoteKind::Score(agg, self.value(parts.next().expect("threshold"))),
                    members,
                )
            }
            other => unreachable!("unexpected vote {other:?}"),
        };
        let mut severity = Vec::new();
        if let Some(block) = inner.next() {
            for arm in block.into_inner() {
                let arm_span = self.span(&arm);
                let mut parts = arm.into_inner();
                let level = self.name(parts.next().expect("level"));
                let rest = parts.next().expect("condition");
                let cond = (rest.as_rule() == Rule::condition).then(|| self.condition(rest));
                severity.push(SeverityArm {
                    level,
                    cond,
                    span: arm_span,
                });
            }
        }
        Ensemble {
            name,
            vote: Vote {
                kind,
                members,
                span: vote_span,
            },
            severity,
            span,
        }
    }

    fn condition(&self, p: Pair<'_, Rule>) -> Cond {
        let terms: Vec<Cond> = p
            .into_inner()
            .filter(|t| t.as_rule() == Rule::cond_term)
            .map(|t| self.term(t))
            .collect();
        if terms.len() == 1 {
            terms.into_iter().next().expect("one")
        } else {
            Cond::Or(terms)
        }
    }

    fn term(&self, p: Pair<'_, Rule>) -> Cond {
        let atoms: Vec<Cond> = p
            .into_inner()
            .filter(|a| a.as_rule() == Rule::cond_atom)
            .map(|a| self.atom(a))
            .collect();
        if atoms.len() == 1 {
            atoms.into_iter().next().expect("one")
        } else {
            Cond::And(atoms)
        }
    }

    fn atom(&self, p: Pair<'_, Rule>) -> Cond {
        let mut negations = 0;
        let mut cond = None;
        for part in p.into_inner() {
            match part.as_rule() {
                Rule::cond_not => negations += 1,
                Rule::score_cmp => {
                    let span = self.span(&part);
                    let mut q = part.into_inner();
                    let measure = if q.next().expect("measure").as_str() == "score" {
                        Measure::Score
                    } else {
                        Measure::Votes
                    };
                    let cmp = match q.next().expect("cmp").as_str() {
                        ">=" => Cmp::Ge,
                        "<=" => Cmp::Le,
                        ">" => Cmp::Gt,
                        "<" => Cmp::Lt,
                        _ => Cmp::Eq,
                    };
                    cond = Some(Cond::Compare(
                        measure,
                        cmp,
                        self.value(q.next().expect("value")),
                        span,
                    ));
                }
                Rule::condition => cond = Some(self.condition(part)),
                _ => cond = Some(Cond::Member(self.name(part))),
            }
        }
        let mut cond = cond.expect("an atom");
        for _ in 0..negations {
            cond = Cond::Not(Box::new(cond));
        }
        cond
    }

    fn alert(&self, mut inner: pest::iterators::Pairs<'_, Rule>, span: Span) -> Alert {
        let name = self.name(inner.next().expect("name"));
        let mut alert = Alert {
            name,
            when: None,
            cooldown: None,
            group_by: Vec::new(),
            notify: Vec::new(),
            span,
        };
        for clause in inner {
            match clause.as_rule() {
                Rule::alert_when => {
                    let mut parts = clause.into_inner();
                    let level = self.name(parts.next().expect("level"));
                    let hold = parts.next().map(|h| match h.as_rule() {
                        Rule::events => Hold::Events(
                            h.into_inner()
                                .next()
                                .expect("count")
                                .as_str()
                                .parse()
                                .unwrap_or(u64::MAX),
                        ),
                        _ => Hold::Duration(duration(h.as_str())),
                    });
                    alert.when = Some((level, hold));
                }
                Rule::cooldown => {
                    let mut parts = clause.into_inner();
                    let ns = duration(parts.next().expect("duration").as_str());
                    alert.cooldown = Some((ns, parts.next().is_some()));
                }
                Rule::group_by => {
                    alert.group_by = self.names(clause.into_inner().next().expect("fields"))
                }
                Rule::notify => {
                    for target in clause.into_inner() {
                        let mut parts = target.into_inner();
                        let kind = self.name(parts.next().expect("kind"));
                        alert.notify.push(Target {
                            kind,
                            arg: parts.next().map(string),
                        });
                    }
                }
                other => unreachable!("unexpected {other:?} in an alert"),
            }
        }
        alert
    }

    fn test(&self, mut inner: pest::iterators::Pairs<'_, Rule>, span: Span) -> Test {
        let name = string(inner.next().expect("name"));
        let mut given = inner.next().expect("given").into_inner();
        let input = self.name(given.next().expect("input"));
        let data_pair = given.next().expect("file");
        let data = (string(data_pair.clone()), self.span(&data_pair));
        let expectations = inner
            .map(|e| {
                let espan = self.span(&e);
                let mut target = None;
                let (mut negated, mut expected, mut at, mut key) =
                    (false, Expected::Fires, None, None);
                for part in e.into_inner() {
                    match part.as_rule() {
                        Rule::ident => target = Some(self.name(part)),
                        Rule::expect_not => negated = true,
                        Rule::expect_fires => expected = Expected::Fires,
                        Rule::expect_alerts => expected = Expected::Alerts,
                        Rule::expect_severity => {
                            expected = Expected::Severity(
                                self.name(part.into_inner().next().expect("level")),
                            )
                        }
                        Rule::string if at.is_none() => {
                            at = Some((string(part.clone()), self.span(&part)))
                        }
                        _ => key = Some(string(part)),
                    }
                }
                Expectation {
                    target: target.expect("target"),
                    negated,
                    expected,
                    at: at.expect("at"),
                    key,
                    span: espan,
                }
            })
            .collect();
        Test {
            name,
            input,
            data,
            expectations,
            span,
        }
    }

    fn expr(&self, p: Pair<'_, Rule>) -> Expr {
        pratt()
            .map_primary(|primary| match primary.as_rule() {
                Rule::expr => self.expr(primary),
                Rule::ident => Expr::Name(self.name(primary)),
                Rule::call => {
                    let span = self.span(&primary);
                    let mut parts = primary.into_inner();
                    let func = self.name(parts.next().expect("function"));
                    let args = parts
                        .map(|a| self.expr(a.into_inner().next().expect("argument")))
                        .collect();
                    Expr::Call(func, args, span)
                }
                _ => Expr::Value(self.literal(primary)),
            })
            .map_prefix(|op, rhs| {
                let span = Span {
                    file: self.file,
                    start: op.as_span().start(),
                    end: rhs.span().end,
                };
                Expr::Neg(Box::new(rhs), span)
            })
            .map_infix(|lhs, op, rhs| {
                let op = match op.as_rule() {
                    Rule::add => BinOp::Add,
                    Rule::sub => BinOp::Sub,
                    Rule::mul => BinOp::Mul,
                    _ => BinOp::Div,
                };
                let span = Span {
                    file: self.file,
                    start: lhs.span().start,
                    end: rhs.span().end,
                };
                Expr::Binary(op, Box::new(lhs), Box::new(rhs), span)
            })
            .parse(p.into_inner())
    }

    fn value(&self, p: Pair<'_, Rule>) -> Value {
        let inner = p.into_inner().next().expect("value");
        match inner.as_rule() {
            Rule::ident => Value {
                span: self.span(&inner),
                kind: ValueKind::Name(inner.as_str().to_owned()),
            },
            Rule::signed => {
                let span = self.span(&inner);
                let lit = self.literal(inner.into_inner().next().expect("number"));
                let kind = match lit.kind {
                    ValueKind::Int(v) => ValueKind::Int(-v),
                    ValueKind::Float(v) => ValueKind::Float(-v),
                    ValueKind::Duration(v) => ValueKind::Duration(-v),
                    other => other,
                };
                Value { kind, span }
            }
            _ => self.literal(inner),
        }
    }

    fn literal(&self, p: Pair<'_, Rule>) -> Value {
        let span = self.span(&p);
        let text = p.as_str();
        let kind = match p.as_rule() {
            Rule::number => match text.parse::<i64>() {
                Ok(v) => ValueKind::Int(v),
                Err(_) => ValueKind::Float(text.parse().unwrap_or(f64::NAN)),
            },
            Rule::percent => ValueKind::Float(
                text.trim_end_matches('%')
                    .parse::<f64>()
                    .unwrap_or(f64::NAN)
                    / 100.0,
            ),
            Rule::duration => ValueKind::Duration(duration(text)),
            Rule::boolean => ValueKind::Bool(text == "true"),
            Rule::string => ValueKind::Str(string(p)),
            other => unreachable!("unexpected literal {other:?}"),
        };
        Value { kind, span }
    }
}

fn duration(text: &str) -> i64 {
    adr_sdk::params::parse_duration(text).unwrap_or(i64::MAX)
}

/// The text of a string literal, escapes resolved.
fn string(p: Pair<'_, Rule>) -> String {
    let body = p.into_inner().next().map_or("", |b| b.as_str());
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(other) => out.push(other),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(src: &str) -> Vec<Item> {
        parse_items(0, src).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn detectors_keep_params_inputs_and_training() {
        let src = "detector f = ml.isolation_forest(trees = 200, contamination = 2%, seed = -1, window = 5m, mode = fast)\n    on [a, b] train on first 10000 refit every 1d\n";
        let [Item::Detector(d)] = &items(src)[..] else {
            panic!()
        };
        assert_eq!(
            (d.family.text.as_str(), d.detector.text.as_str()),
            ("ml", "isolation_forest")
        );
        let values: Vec<&ValueKind> = d.params.iter().map(|(_, v)| &v.kind).collect();
        assert_eq!(
            values,
            [
                &ValueKind::Int(200),
                &ValueKind::Float(0.02),
                &ValueKind::Int(-1),
                &ValueKind::Duration(300_000_000_000),
                &ValueKind::Name("fast".into())
            ]
        );
        assert_eq!(
            d.inputs.iter().map(|n| n.text.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert!(matches!(
            d.training[..],
            [
                Training::First(10_000, _),
                Training::Refit(86_400_000_000_000, _)
            ]
        ));
        assert_eq!(&src[d.name.span.start..d.name.span.end], "f");
    }

    #[test]
    fn expressions_respect_precedence() {
        let [Item::Feature(_, e)] = &items("feature x = a + b * -c / 2\n")[..] else {
            panic!()
        };
        let Expr::Binary(BinOp::Add, lhs, rhs, _) = e else {
            panic!("{e:?}")
        };
        assert!(matches!(**lhs, Expr::Name(_)));
        let Expr::Binary(BinOp::Div, mul, _, _) = &**rhs else {
            panic!("{rhs:?}")
        };
        assert!(
            matches!(&**mul, Expr::Binary(BinOp::Mul, _, neg, _) if matches!(**neg, Expr::Neg(..)))
        );
    }

    #[test]
    fn votes_severities_alerts_and_tests_lower() {
        let src = r#"
ensemble e {
    vote = weighted(a: 1, b: 2.5) >= 0.5
    severity {
        critical when a and not b or score > 0.9
        low otherwise
    }
}
alert e { when severity >= high for 5m  cooldown 10m per key  group by s  notify log, file("x.jsonl") }
test "t" { given m from "d.csv"  expect e not severity low at "2025-01-01T00:00:00Z" key "BTC" }
"#;
        let parsed = items(src);
        let Item::Ensemble(e) = &parsed[0] else {
            panic!()
        };
        assert!(matches!(&e.vote.kind, VoteKind::Weighted(w, _) if w.len() == 2));
        assert!(
            matches!(&e.severity[0].cond, Some(Cond::Or(parts)) if matches!(&parts[0], Cond::And(_)))
        );
        assert!(e.severity[1].cond.is_none());
        let Item::Alert(a) = &parsed[1] else { panic!() };
        assert!(matches!(
            a.when,
            Some((_, Some(Hold::Duration(300_000_000_000))))
        ));
        assert_eq!(a.cooldown, Some((600_000_000_000, true)));
        assert_eq!(a.notify[1].arg.as_deref(), Some("x.jsonl"));
        let Item::Test(t) = &parsed[2] else { panic!() };
        let x = &t.expectations[0];
        assert!(x.negated && matches!(&x.expected, Expected::Severity(l) if l.text == "low"));
        assert_eq!(x.key.as_deref(), Some("BTC"));
    }
}
