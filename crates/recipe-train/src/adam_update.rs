//! One Adam or AdamW update of one parameter, as a kernel supplied through
//! [`OptimizerKernels::adam_update`](crate::OptimizerKernels::adam_update)
//! computes it.

use burn::tensor::Tensor;

/// One update of Burn's `Adam` or `AdamW` (without AMSGrad), with an
/// optional L1/L2 penalty whose gradient is added first:
///
/// ```text
/// g  = grad + l1 sign(w) + l2 w
/// m  = g (1 - beta_1)            v = g² (1 - beta_2)              (time 1)
/// m  = beta_1 m + (1 - beta_1) g  v = beta_2 v + (1 - beta_2) g²  (later)
/// Adam:  w = w - lr (m / (1 - beta_1^t)) / (sqrt(v / (1 - beta_2^t)) + epsilon)
/// AdamW: w = w (1 - lr weight_decay) - lr (the same step)
/// ```
///
/// Burn writes Adam's step with the bias corrections folded into one
/// factor and into epsilon, AdamW's with them divided out;
/// [`AdamUpdate::factors`] gives each rule's constants as Burn computes
/// them, so that a kernel following [`AdamFactors`]' order of operations
/// can match Burn's tensor code bit for bit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamUpdate {
    /// The learning rate (`f64`: AdamW's decay factor is computed from it in
    /// `f64`, as Burn does).
    pub learning_rate: f64,
    /// The first moment's decay.
    pub beta_1: f32,
    /// The second moment's decay.
    pub beta_2: f32,
    /// Added to the denominator.
    pub epsilon: f32,
    /// This update's number, counting from 1 (the first has no moments to
    /// read).
    pub time: usize,
    /// Adam, or AdamW with its decoupled weight decay.
    pub rule: AdamRule,
    /// The L1 strength (0 for none).
    pub l1: f32,
    /// The L2 strength (0 for none).
    pub l2: f32,
}

/// Which of Burn's update rules an [`AdamUpdate`] is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AdamRule {
    /// Burn's `Adam`.
    Adam,
    /// Burn's `AdamW`: the weights shrink by `1 - lr * weight_decay` before
    /// the step.
    AdamW {
        /// The decoupled weight decay.
        weight_decay: f32,
    },
}

/// The constants of one [`AdamUpdate`], computed as Burn computes them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamFactors {
    /// The moments start from the gradient instead of decaying (Burn does
    /// not decay zeros on the first update, which matters for the sign of
    /// zero).
    pub first: bool,
    /// The first moment's decay.
    pub beta_1: f32,
    /// The second moment's decay.
    pub beta_2: f32,
    /// `1 - beta_1`.
    pub one_minus_beta_1: f32,
    /// `1 - beta_2`.
    pub one_minus_beta_2: f32,
    /// The learning rate as `f32`.
    pub learning_rate: f32,
    /// The rule's own constants.
    pub rule: AdamRuleFactors,
}

/// The constants of Adam's or AdamW's step, in Burn's arithmetic.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AdamRuleFactors {
    /// Burn's `Adam`.
    Adam(AdamStep),
    /// Burn's `AdamW`.
    AdamW(AdamWStep),
}

/// Adam's step: `(m * combined) / (sqrt(v) + epsilon)`, `w = w - step * lr`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamStep {
    /// `sqrt(1 - beta_2^t) / (1 - beta_1^t)`.
    pub combined: f32,
    /// `epsilon * sqrt(1 - beta_2^t)`.
    pub epsilon: f32,
}

/// AdamW's step: `(m / bias_correction_1) / (sqrt(v / bias_correction_2) +
/// epsilon)`, `w = w * decay - step * lr` (`w - step * lr` without decay).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWStep {
    /// `1 - beta_1^t`.
    pub bias_correction_1: f32,
    /// `1 - beta_2^t`.
    pub bias_correction_2: f32,
    /// Added to the denominator.
    pub epsilon: f32,
    /// `1 - lr * weight_decay` (computed in `f64`, as Burn does), or `None`
    /// where that product is 0 (Burn skips the multiplication).
    pub decay: Option<f32>,
}

impl AdamStep {
    /// The new weight from the weight `w` and the new moments `m`, `v`, in
    /// Burn's order of operations.
    #[inline(always)]
    pub fn weight(&self, w: f32, m: f32, v: f32, learning_rate: f32) -> f32 {
        let step = (m * self.combined) / (v.sqrt() + self.epsilon);
        w - step * learning_rate
    }
}

impl AdamWStep {
    /// The new weight from the weight `w` and the new moments `m`, `v`, in
    /// Burn's order of operations.
    #[inline(always)]
    pub fn weight(&self, w: f32, m: f32, v: f32, learning_rate: f32) -> f32 {
        let step =
            (m / self.bias_correction_1) / ((v / self.bias_correction_2).sqrt() + self.epsilon);
        let decayed = match self.decay {
            Some(factor) => w * factor,
            None => w,
        };
        decayed - step * learning_rate
    }
}

impl AdamUpdate {
    /// This update's constants, computed exactly as Burn's `Adam` and
    /// `AdamW` compute them.
    pub fn factors(&self) -> AdamFactors {
        let t = self.time as i32;
        let rule = match self.rule {
            AdamRule::Adam => {
                let bias_correction2_sqrt = (1.0 - self.beta_2.powi(t)).sqrt();
                AdamRuleFactors::Adam(AdamStep {
                    combined: bias_correction2_sqrt / (1.0 - self.beta_1.powi(t)),
                    epsilon: self.epsilon * bias_correction2_sqrt,
                })
            }
            AdamRule::AdamW { weight_decay } => {
                let decay_rate = self.learning_rate * weight_decay as f64;
                AdamRuleFactors::AdamW(AdamWStep {
                    bias_correction_1: 1.0 - self.beta_1.powi(t),
                    bias_correction_2: 1.0 - self.beta_2.powi(t),
                    epsilon: self.epsilon,
                    decay: (decay_rate != 0.0).then_some((1.0 - decay_rate) as f32),
                })
            }
        };
        AdamFactors {
            first: self.time == 1,
            beta_1: self.beta_1,
            beta_2: self.beta_2,
            one_minus_beta_1: 1.0 - self.beta_1,
            one_minus_beta_2: 1.0 - self.beta_2,
            learning_rate: self.learning_rate as f32,
            rule,
        }
    }
}

impl AdamFactors {
    /// The new moments of one element from its gradient `g` (penalty
    /// included) and its moments `m`, `v`, in Burn's order of operations.
    #[inline(always)]
    pub fn moments(&self, g: f32, m: f32, v: f32) -> (f32, f32) {
        if self.first {
            (g * self.one_minus_beta_1, (g * g) * self.one_minus_beta_2)
        } else {
            (
                m * self.beta_1 + g * self.one_minus_beta_1,
                v * self.beta_2 + (g * g) * self.one_minus_beta_2,
            )
        }
    }

    /// The new weight from the weight `w` and the new moments, in Burn's
    /// order of operations.
    #[inline(always)]
    pub fn weight(&self, w: f32, m: f32, v: f32) -> f32 {
        match self.rule {
            AdamRuleFactors::Adam(step) => step.weight(w, m, v, self.learning_rate),
            AdamRuleFactors::AdamW(step) => step.weight(w, m, v, self.learning_rate),
        }
    }
}

/// One parameter's tensors before an [`AdamUpdate`], flattened, all on one
/// device.
#[derive(Debug, Clone)]
pub struct AdamTensors {
    /// The parameter.
    pub param: Tensor<1>,
    /// Its gradient (without the penalty's).
    pub grad: Tensor<1>,
    /// The moments after the last update; `None` before the first.
    pub moments: Option<AdamMoments>,
}

/// Adam's two moments of one parameter, flattened.
#[derive(Debug, Clone)]
pub struct AdamMoments {
    /// The first moment (the gradient's running mean).
    pub moment_1: Tensor<1>,
    /// The second moment (the squared gradient's running mean).
    pub moment_2: Tensor<1>,
}

/// One parameter after an [`AdamUpdate`].
#[derive(Debug, Clone)]
pub struct AdamUpdated {
    /// The updated parameter.
    pub param: Tensor<1>,
    /// The new moments.
    pub moments: AdamMoments,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(rule: AdamRule, time: usize) -> AdamUpdate {
        AdamUpdate {
            learning_rate: 1e-2,
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-8,
            time,
            rule,
            l1: 0.0,
            l2: 0.0,
        }
    }

    /// Both rules are the same update, written two ways (Kingma & Ba,
    /// Algorithm 1 with epsilon after the bias correction): a weight of 1
    /// with gradient 0.5 at time 1 moves by the learning rate against the
    /// gradient's sign, whatever the gradient's size.
    #[test]
    fn both_rules_take_the_first_step_of_kingma_and_ba() {
        for rule in [AdamRule::Adam, AdamRule::AdamW { weight_decay: 0.0 }] {
            let f = update(rule, 1).factors();
            let (m, v) = f.moments(0.5, 123.0, 456.0);
            assert_eq!((m, v), (0.5 * (1.0 - 0.9f32), 0.25 * (1.0 - 0.999f32)));
            let w = f.weight(1.0, m, v);
            assert!((w - 0.99).abs() < 1e-6, "{rule:?}: {w}");
        }
    }

    /// Later moments decay; AdamW shrinks the weight by `1 - lr * wd` too.
    #[test]
    fn adamw_decays_the_weight_and_later_moments_decay() {
        let f = update(AdamRule::AdamW { weight_decay: 0.5 }, 2).factors();
        assert_eq!(
            f.moments(1.0, 2.0, 3.0),
            (2.0 * 0.9 + 0.1f32, 3.0 * 0.999 + 0.001f32)
        );
        let AdamRuleFactors::AdamW(step) = f.rule else {
            panic!("{:?}", f.rule)
        };
        assert_eq!(step.decay, Some((1.0 - 1e-2 * 0.5f64) as f32));
        let plain = update(AdamRule::Adam, 2).factors();
        let (m, v) = plain.moments(1.0, 2.0, 3.0);
        let shrunk = f.weight(1.0, m, v) - plain.weight(1.0, m, v);
        assert!((shrunk + 0.005).abs() < 1e-5, "{shrunk}");
    }
}
