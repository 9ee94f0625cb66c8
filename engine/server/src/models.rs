//! Models trained through the API (the seed's `/detectors/*`): a detector built with its
//! parameters, fed its training rows, and stored as its saved state, so that it scores
//! the same after a restart.
//!
//! `detect` scores rows with a copy of the model (restored from its state) and changes
//! nothing; `predict` scores one event with the model itself and stores its new state
//! before answering, as the seed's `detect_realtime` follows a stream.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use adr_engine::detect::parse_params;
use adr_engine::plugins::Registry;
use adr_sdk::host::DetectorHandle;
use adr_sdk::score::ScoreColumns;
use adr_sdk::{Column, Frame, ParamValue};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::redis_out::RedisOut;
use crate::state_writes::{StateWrites, Written};
use crate::store::{NewModel, Store, StoredModel};

/// Why a model request was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// No such detector.
    #[error("{0}")]
    UnknownDetector(String),
    /// The parameters do not fit the detector's schema.
    #[error("{0}")]
    Params(String),
    /// The rows do not fit the columns, or there are none or too many.
    #[error("{0}")]
    Rows(String),
    /// The detector refused (its parameters together, its inputs) or failed.
    #[error("{0}")]
    Detector(String),
    /// No model has this id.
    #[error("no model `{0}`; GET /api/v1/models lists them")]
    NotFound(String),
    /// The store failed.
    #[error("store: {0}")]
    Store(String),
}

/// `POST /detectors/train`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainRequest {
    /// `family.detector`.
    pub detector: String,
    /// Parameters by name (numbers, strings or booleans, as `adr detect --param` takes).
    #[serde(default)]
    pub params: serde_json::Map<String, Value>,
    /// The input columns, in the order of each row's values.
    pub columns: Vec<String>,
    /// Training rows, one value per column (`null`: missing).
    pub rows: Vec<Vec<Option<f64>>>,
}

/// `POST /detectors/detect`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectRequest {
    /// The model.
    pub model_id: String,
    /// Rows to score, one value per column.
    pub rows: Vec<Vec<Option<f64>>>,
}

/// `POST /detectors/predict`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PredictRequest {
    /// The model.
    pub model_id: String,
    /// The event's values, one per column.
    pub values: Vec<Option<f64>>,
}

/// A model `predict` keeps in memory.
#[derive(Debug)]
pub struct LiveModel {
    id: String,
    columns: Vec<String>,
    handle: Mutex<DetectorHandle>,
}

/// The trained models.
#[derive(Debug)]
pub struct Models {
    registry: Arc<Registry>,
    store: Arc<Store>,
    max_rows: usize,
    /// Models `predict` has used, live (their state is stored after each event): a
    /// predict on one of them reads nothing from the store.
    live: Mutex<HashMap<String, Arc<LiveModel>>>,
    /// Where `predict` stores their new states.
    writes: StateWrites,
    /// Redis's model cache, when configured.
    cache: Option<Arc<RedisOut>>,
}

fn param_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Column-major values of `rows`, each checked to have `width` values.
fn columns_of(rows: &[Vec<Option<f64>>], width: usize) -> Result<Vec<Vec<f64>>, ModelError> {
    let mut columns = vec![Vec::with_capacity(rows.len()); width];
    for (i, row) in rows.iter().enumerate() {
        if row.len() != width {
            return Err(ModelError::Rows(format!(
                "row {i} has {} values for {width} columns",
                row.len()
            )));
        }
        for (column, value) in columns.iter_mut().zip(row) {
            column.push(value.unwrap_or(f64::NAN));
        }
    }
    Ok(columns)
}

fn score(
    handle: &mut DetectorHandle,
    names: &[String],
    columns: &[Vec<f64>],
) -> Result<ScoreColumns, ModelError> {
    let rows = columns.first().map_or(0, Vec::len);
    let frame_columns: Vec<Column<'_>> = names
        .iter()
        .zip(columns)
        .map(|(n, c)| Column::f64(n, c))
        .collect();
    let timestamps: Vec<i64> = (0..rows as i64).collect();
    let frame =
        Frame::new(&timestamps, &frame_columns).map_err(|e| ModelError::Rows(e.to_string()))?;
    let mut out = ScoreColumns::with_len(rows);
    handle
        .score(&frame, &mut out.as_mut())
        .map_err(|e| ModelError::Detector(e.to_string()))?;
    Ok(out)
}

fn scores_json(out: &ScoreColumns) -> Value {
    let number = |x: f64| if x.is_finite() { json!(x) } else { Value::Null };
    json!({
        "scores": out.normalised.iter().map(|&x| number(x)).collect::<Vec<_>>(),
        "raw": out.raw.iter().map(|&x| number(x)).collect::<Vec<_>>(),
        "labels": out.verdict.iter().map(|v| match v {
            adr_sdk::Verdict::Anomaly => json!(1),
            adr_sdk::Verdict::Normal => json!(0),
            adr_sdk::Verdict::Undetermined => Value::Null,
        }).collect::<Vec<_>>(),
        "verdicts": out.verdict.iter().map(|v| v.as_str()).collect::<Vec<_>>(),
    })
}

impl Models {
    /// Models built with the plugins of `registry`, stored in `store`; requests carry at
    /// most `max_rows` rows.
    ///
    /// # Errors
    ///
    /// The thread that stores `predict`'s states cannot be started.
    pub fn new(
        registry: Arc<Registry>,
        store: Arc<Store>,
        max_rows: usize,
        cache: Option<Arc<RedisOut>>,
    ) -> std::io::Result<Models> {
        Ok(Models {
            writes: StateWrites::start(Arc::clone(&store), cache.clone())?,
            cache,
            registry,
            store,
            max_rows,
            live: Mutex::new(HashMap::new()),
        })
    }

    fn check_rows(&self, rows: usize) -> Result<(), ModelError> {
        if rows == 0 {
            return Err(ModelError::Rows("no rows".into()));
        }
        if rows > self.max_rows {
            return Err(ModelError::Rows(format!(
                "{rows} rows; a request carries at most {} (limits.max_batch_rows)",
                self.max_rows
            )));
        }
        Ok(())
    }

    /// Builds the detector of `model`, restored to its stored state.
    fn restore(&self, model: &StoredModel) -> Result<DetectorHandle, ModelError> {
        let params = self.parsed(&model.detector, &model.params)?;
        let mut handle = self
            .registry
            .create(&model.detector, &params, &model.columns)
            .map_err(|e| ModelError::Detector(e.to_string()))?;
        handle
            .restore(&model.state)
            .map_err(|e| ModelError::Detector(format!("cannot restore the model: {e}")))?;
        Ok(handle)
    }

    fn parsed(
        &self,
        detector: &str,
        given: &[(String, String)],
    ) -> Result<Vec<(String, ParamValue)>, ModelError> {
        let (_, info) = self
            .registry
            .find(detector)
            .map_err(|e| ModelError::UnknownDetector(e.to_string()))?;
        parse_params(info, given).map_err(|errors| {
            ModelError::Params(
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })
    }

    /// Trains a model; its description, with its id.
    ///
    /// # Errors
    ///
    /// A [`ModelError`].
    pub fn train(&self, request: &TrainRequest) -> Result<Value, ModelError> {
        self.check_rows(request.rows.len())?;
        let (_, info) = self
            .registry
            .find(&request.detector)
            .map_err(|e| ModelError::UnknownDetector(e.to_string()))?;
        let mut given: Vec<(String, String)> = request
            .params
            .iter()
            .map(|(k, v)| (k.clone(), param_text(v)))
            .collect();
        // A detector that trains learns from the rows given, all of them.
        if info.params.iter().any(|p| p.name == "train") && !request.params.contains_key("train") {
            given.push(("train".into(), request.rows.len().to_string()));
        }
        let columns = columns_of(&request.rows, request.columns.len())?;
        let params = self.parsed(&request.detector, &given)?;
        let mut handle = self
            .registry
            .create(&request.detector, &params, &request.columns)
            .map_err(|e| ModelError::Detector(e.to_string()))?;
        score(&mut handle, &request.columns, &columns)?;
        let state = handle
            .save()
            .map_err(|e| ModelError::Detector(e.to_string()))?
            .ok_or_else(|| {
                ModelError::Detector(format!(
                    "{} keeps no state it can save, so it cannot be stored as a model",
                    request.detector
                ))
            })?;
        let id = self
            .store
            .insert_model(&NewModel {
                detector: request.detector.clone(),
                params: given,
                columns: request.columns.clone(),
                rows_trained: request.rows.len(),
                state,
            })
            .map_err(|e| ModelError::Store(e.to_string()))?;
        let model = self.find(&id)?;
        if let Some(cache) = &self.cache {
            cache.cache_states(vec![(model.id.clone(), model.state.clone())]);
        }
        Ok(model.describe())
    }

    fn find(&self, id: &str) -> Result<StoredModel, ModelError> {
        self.store
            .model(id)
            .map_err(|e| ModelError::Store(e.to_string()))?
            .ok_or_else(|| ModelError::NotFound(id.to_owned()))
    }

    /// Scores rows with a copy of a model; the model does not change.
    ///
    /// # Errors
    ///
    /// A [`ModelError`].
    pub fn detect(&self, request: &DetectRequest) -> Result<Value, ModelError> {
        self.check_rows(request.rows.len())?;
        let model = self.find(&request.model_id)?;
        let columns = columns_of(&request.rows, model.columns.len())?;
        let mut handle = self.restore(&model)?;
        let out = score(&mut handle, &model.columns, &columns)?;
        let mut doc = scores_json(&out);
        doc["model_id"] = json!(model.id);
        Ok(doc)
    }

    /// The model `id` if `predict` holds it already (no store read).
    pub fn live(&self, id: &str) -> Option<Arc<LiveModel>> {
        self.live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .map(Arc::clone)
    }

    /// The model `id`, read from the store and held for `predict` from now on.
    ///
    /// # Errors
    ///
    /// [`ModelError::NotFound`], or it cannot be read or rebuilt.
    pub fn load_live(&self, id: &str) -> Result<Arc<LiveModel>, ModelError> {
        if let Some(model) = self.live(id) {
            return Ok(model);
        }
        let stored = self.find(id)?;
        let loaded = Arc::new(LiveModel {
            handle: Mutex::new(self.restore(&stored)?),
            id: stored.id.clone(),
            columns: stored.columns,
        });
        // Two first calls at once: the one inserted first is the one both use.
        Ok(Arc::clone(
            self.live
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(stored.id)
                .or_insert(loaded),
        ))
    }

    /// Scores one event with `model` itself: the answer, and when its new state is
    /// stored (answer only then: the seed's `detect_realtime` follows a stream, and a
    /// restart must go on from the state the last answer came from).
    ///
    /// # Errors
    ///
    /// A [`ModelError`].
    pub fn predict(
        &self,
        model: &LiveModel,
        request: &PredictRequest,
    ) -> Result<(Value, Option<tokio::sync::oneshot::Receiver<Written>>), ModelError> {
        let columns = columns_of(std::slice::from_ref(&request.values), model.columns.len())?;
        let mut handle = model.handle.lock().unwrap_or_else(PoisonError::into_inner);
        let out = score(&mut handle, &model.columns, &columns)?;
        let written = handle
            .save()
            .map_err(|e| ModelError::Detector(e.to_string()))?
            .map(|state| self.writes.write(&model.id, state));
        drop(handle);
        let number = |x: f64| if x.is_finite() { json!(x) } else { Value::Null };
        Ok((
            json!({
                "model_id": model.id,
                "score": number(out.normalised[0]),
                "raw": number(out.raw[0]),
                "is_anomaly": out.verdict[0] == adr_sdk::Verdict::Anomaly,
                "verdict": out.verdict[0].as_str(),
            }),
            written,
        ))
    }

    /// Every model, described.
    ///
    /// # Errors
    ///
    /// The store's.
    pub fn list(&self) -> Result<Value, ModelError> {
        let models = self
            .store
            .models()
            .map_err(|e| ModelError::Store(e.to_string()))?;
        Ok(json!({"models": models.iter().map(StoredModel::describe).collect::<Vec<_>>()}))
    }

    /// Deletes a model.
    ///
    /// # Errors
    ///
    /// [`ModelError::NotFound`], or the store's.
    pub fn delete(&self, id: &str) -> Result<(), ModelError> {
        self.live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
        let deleted = self.writes.between_writes(|| {
            let deleted = self.store.delete_model(id);
            if let (Some(cache), Ok(true)) = (&self.cache, &deleted) {
                cache.forget_model(id);
            }
            deleted
        });
        if deleted.map_err(|e| ModelError::Store(e.to_string()))? {
            Ok(())
        } else {
            Err(ModelError::NotFound(id.to_owned()))
        }
    }
}
