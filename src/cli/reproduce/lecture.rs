//! The lecture's experiments of `recipe reproduce`, one function each: it
//! trains its runs, writes their pages and charts into its folder of the
//! output, and returns the claims its results decide.

use std::path::Path;

use anyhow::{Context as _, Result, bail};
use burn::module::Module;
use burn::tensor::{Tensor, TensorData};
use recipe::data::{load_images, load_splits, locate};
use recipe::experiments::{
    Claim, DepthSweep, DropoutEnsemble, FormAgreement, PenaltyTraceConfig, VariantKey, VariantRow,
    activation_claims, compare, dropout_claims, dropout_variants, early_stopping_claims,
    early_stopping_variants, first_layer_responses, learning_curves, markdown_table, maxout_claims,
    regularization_claims, regularization_variants, relu_regions, response_chart, trace_penalties,
    underfitting_dropout_variants, vanishing_gradient_claims, variant_folder, weight_histograms,
};
use recipe::train::{TrainConfig, evaluate, evaluate_monte_carlo, thinned_copy};

use super::context::{Context, training_images, write_pretty_json};
use super::{Experiment, Profile};

/// Runs one of the lecture's experiments (`all` and `paper` are not one).
pub(super) fn measure(experiment: Experiment, context: &Context) -> Result<Vec<Claim>> {
    match experiment {
        Experiment::VanishingGradient => vanishing_gradient(context),
        Experiment::Activations => activations(context),
        Experiment::Maxout => maxout(context),
        Experiment::EarlyStopping => early_stopping(context),
        Experiment::Regularization => regularization(context),
        Experiment::Penalties => penalties(context),
        Experiment::Dropout => dropout(context),
        Experiment::All | Experiment::Paper => {
            bail!("`{experiment:?}` is not one of the lecture's experiments")
        }
    }
}

/// Ten activations at depth 3, and the ReLU net's linear regions.
fn activations(context: &Context) -> Result<Vec<Claim>> {
    let sweep = DepthSweep::activations(context.sweep_epochs(3), context.sweep_limit());
    let rows = context.sweep("activations", "Activations at depth 3 (Adam 1e-3)", sweep)?;
    let mut claims = activation_claims(&rows);
    claims.extend(relu_region_claims(context)?);
    Ok(claims)
}

/// Maxout with 2 to 5 pieces against ReLU at depth 3, and what three of
/// its first layer's units learned.
fn maxout(context: &Context) -> Result<Vec<Claim>> {
    let sweep = DepthSweep::maxout_pieces(context.sweep_epochs(3), context.sweep_limit());
    let rows = context.sweep(
        "maxout",
        "Maxout pieces against ReLU at depth 3 (Adam 1e-3)",
        sweep,
    )?;
    maxout_response_plot(context)?;
    Ok(maxout_claims(&rows))
}

/// The whole epoch budget against early stopping, on a net that overfits.
fn early_stopping(context: &Context) -> Result<Vec<Claim>> {
    let dir = context.out.join("early-stopping");
    let rows = compare(
        &early_stopping_variants(&context.overfitting_setting()),
        &context.device,
        Some(&dir),
    )?;
    learning_curves("Early stopping on a net that overfits", &rows).write(&dir.join("curves"))?;
    context.write(
        "early-stopping",
        "Early stopping on a net that overfits",
        &format!(
            "{}\n![learning curves](curves.png)\n",
            markdown_table(&rows)
        ),
        &rows,
    )?;
    Ok(early_stopping_claims(&rows))
}

/// No penalty, L2, L1, L1 + L2 and max-norm on a net that overfits.
fn regularization(context: &Context) -> Result<Vec<Claim>> {
    let dir = context.out.join("regularization");
    let rows = compare(
        &regularization_variants(&context.overfitting_setting())?,
        &context.device,
        Some(&dir),
    )?;
    learning_curves("Regularization on a net that overfits", &rows).write(&dir.join("curves"))?;
    weight_histograms("Hidden-layer weights after training", &rows).write(&dir.join("weights"))?;
    context.write(
        "regularization",
        "Regularization on a net that overfits",
        &format!(
            "{}\n![learning curves](curves.png)\n\n![weight histograms](weights.png)\n",
            markdown_table(&rows)
        ),
        &rows,
    )?;
    Ok(regularization_claims(&rows))
}

/// Dropout on a net that overfits and on one that under-fits, and the
/// overfitting one's dropout as an ensemble of thinned nets.
fn dropout(context: &Context) -> Result<Vec<Claim>> {
    let dir = context.out.join("dropout");
    let over = compare(
        &dropout_variants(&context.overfitting_setting())?,
        &context.device,
        Some(&dir),
    )?;
    let under_variants: Vec<_> = underfitting_dropout_variants(5)?
        .into_iter()
        .map(|mut v| {
            v.config = context.on_dataset(v.config);
            v
        })
        .collect();
    let under = compare(&under_variants, &context.device, Some(&dir))?;
    learning_curves("Dropout on a net that overfits", &over).write(&dir.join("curves"))?;
    learning_curves("Dropout on a net that under-fits", &under)
        .write(&dir.join("curves-underfitting"))?;
    let body = format!(
        "On a net that overfits:\n\n{}\n![learning curves](curves.png)\n\n\
         On a net that under-fits:\n\n{}\n![learning curves](curves-underfitting.png)\n",
        markdown_table(&over),
        markdown_table(&under)
    );
    let rows: Vec<&VariantRow> = over.iter().chain(&under).collect();
    context.write(
        "dropout",
        "Dropout helps overfitting, not under-fitting",
        &body,
        &rows,
    )?;
    let mut claims = dropout_claims(&over, &under);
    claims.extend(dropout_ensemble(context)?);
    Ok(claims)
}

/// Traces weights step by step under no penalty, L2 and L1.
fn penalties(context: &Context) -> Result<Vec<Claim>> {
    let base = TrainConfig::new(recipe::models::MlpConfig::new(784, vec![100], 10));
    let mut trace = PenaltyTraceConfig::lecture(base)?;
    trace.base = context.on_dataset(trace.base);
    println!(
        "penalties on {}: {} SGD steps at lr {} with no penalty, L2 {}, L1 {}",
        trace.base.data.dataset, trace.steps, trace.learning_rate, trace.l2, trace.l1
    );
    let measured = trace_penalties(&trace, &context.device)?;
    let dir = context.out.join("penalties");
    measured.chart().write(&dir.join("trace"))?;
    let body = format!(
        "784-100-10 ReLU, {} training images, batch {}, {} steps of plain SGD at lr {}; \
         L2 λ = {} (penalty λ/2 Σw²), L1 λ = {} (penalty λ Σ|w|), the same initial weights \
         for all three. The watched weights go from an input pixel to the first four \
         hidden units.\n\n{}\n![trace](trace.png)\n",
        training_images(&trace.base),
        trace.base.fit.batch_size,
        trace.steps,
        trace.learning_rate,
        trace.l2,
        trace.l1,
        measured.markdown_table()
    );
    context.write("penalties", "L2 and L1 step by step", &body, &measured)?;
    Ok(measured.claims())
}

/// Sigmoid, ReLU and Maxout across depth: the training accuracy, the
/// gradients by layer and how far each layer's weights moved.
fn vanishing_gradient(context: &Context) -> Result<Vec<Claim>> {
    let sweep = DepthSweep::lecture(context.sweep_epochs(5), context.sweep_limit());
    let rows = context.sweep(
        "vanishing-gradient",
        "Vanishing gradient: training and test accuracy by depth",
        sweep.clone(),
    )?;
    sweep
        .depth_chart(&rows)
        .write(&context.out.join("vanishing-gradient").join("depth"))?;
    sweep
        .gradient_chart(&rows)
        .write(&context.out.join("vanishing-gradient").join("gradients"))?;
    sweep
        .movement_chart(&rows)
        .write(&context.out.join("vanishing-gradient").join("movement"))?;
    Ok(vanishing_gradient_claims(&rows))
}

/// The trained network and data of the run in `run`, and its first
/// `count` test images as `[count, pixels]` inputs in `[0, 1]`.
fn run_with_test_images(
    context: &Context,
    run: &Path,
    count: usize,
) -> Result<(recipe::models::Mlp, Vec<Vec<f32>>)> {
    let config: TrainConfig = serde_json::from_str(
        &std::fs::read_to_string(run.join("config.json"))
            .with_context(|| format!("reading {}", run.join("config.json").display()))?,
    )?;
    let mlp = config
        .mlp()?
        .init(&context.device)?
        .try_load_file(run.join("model.bpk"))
        .map_err(|e| anyhow::anyhow!("{}: {e:?}", run.join("model.bpk").display()))?;
    let kind = config.image_set()?;
    let files = locate(kind, config.data.data_dir.as_deref())?;
    let test = load_images(&files.test_images, &files.test_labels, kind.classes())?;
    let images = (0..count.min(test.labels.len()))
        .map(|i| test.image(i).iter().map(|&p| p as f32 / 255.0).collect())
        .collect();
    Ok((mlp, images))
}

/// The activations experiment's 3-layer ReLU net on 1,000 test images:
/// one linear function per region, a different one per image.
fn relu_region_claims(context: &Context) -> Result<Vec<Claim>> {
    let dir = context.out.join("activations");
    let (mlp, images) = run_with_test_images(context, &dir.join("relu-3"), 1000)?;
    let features = images.first().map_or(0, Vec::len);
    let inputs = Tensor::<2>::from_data(
        TensorData::new(images.concat(), [images.len(), features]),
        &context.device,
    );
    let regions = relu_regions(&mlp, inputs, &context.device);
    write_pretty_json(&dir.join("regions.json"), &regions)?;
    println!(
        "relu-3 on {} test images: {} distinct activation patterns, median miss of a neighbour's linear map {:.0}%",
        regions.inputs,
        regions.distinct_patterns,
        100.0 * regions.median_miss()
    );
    Ok(regions.claims())
}

/// The dropout experiment's net trained with dropout, evaluated on test
/// images both as the weight-scaled net and as averages of sampled thinned
/// nets (2,000 images in the quick profile, all 10,000 in the full one).
fn dropout_ensemble(context: &Context) -> Result<Vec<Claim>> {
    let dir = context.out.join("dropout");
    let run = variant_folder(&dir, VariantKey::OverfittingDropout);
    let config = recipe::train::read_run_config(&run)?;
    let mut data = load_splits(
        config.image_set()?,
        config.data.data_dir.as_deref(),
        &config.data.split,
    )?;
    if context.profile == Profile::Quick {
        data.test = data.test.slice(0..data.test.len().min(2_000));
    }
    let data = data.flat_data(config.data.standardize)?;
    let plain = context.device.clone();
    let net = config
        .mlp()?
        .init(&plain)?
        .try_load_file(run.join("model.bpk"))
        .map_err(|e| anyhow::anyhow!("{}: {e:?}", run.join("model.bpk").display()))?;
    let weight_scaled = evaluate(
        &net,
        &data.loader(&data.test, 500, None, Some(plain.clone())),
    )?;
    let lecture_form = FormAgreement::measure(
        &net,
        &data.loader(&data.test, 500, None, Some(plain.clone())),
    )?;
    let (thinned, sampling) = thinned_copy(&net, &plain, config.fit.seed);
    let monte_carlo = evaluate_monte_carlo(
        &thinned,
        &data.loader(&data.test, 500, None, Some(sampling)),
        &[1, 2, 5, 10, 20, 50, 100],
    )?;
    let ensemble = DropoutEnsemble {
        weight_scaled,
        monte_carlo,
        lecture_form: Some(lecture_form),
    };
    ensemble.chart().write(&dir.join("ensemble"))?;
    write_pretty_json(&dir.join("ensemble.json"), &ensemble)?;
    println!(
        "dropout as an ensemble: weight-scaled accuracy {:.4}; averages of thinned nets {}",
        ensemble.weight_scaled.accuracy,
        ensemble
            .monte_carlo
            .iter()
            .map(|mc| format!("{}: {:.4}", mc.samples, mc.accuracy))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(ensemble.claims())
}

/// Plots what three units of the first layer of the 3-piece Maxout net learned.
fn maxout_response_plot(context: &Context) -> Result<()> {
    let run = context.out.join("maxout").join("maxout-3-3");
    let (mlp, images) = run_with_test_images(context, &run, 2)?;
    let [a, b] = [0, 1].map(|i| images.get(i).cloned().unwrap_or_default());
    let responses = first_layer_responses(&mlp, &a, &b, &[0, 1, 2], 121, &context.device)?;
    response_chart(
        "Three Maxout units (3 pieces) of the first layer: piecewise linear",
        &responses,
    )
    .write(&context.out.join("maxout").join("units"))?;
    println!(
        "wrote {}",
        context.out.join("maxout").join("units.png").display()
    );
    Ok(())
}
