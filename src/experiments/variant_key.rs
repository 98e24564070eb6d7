//! The variants the report's claims compare, by a typed key: the experiment
//! that trains a variant and the claim that reads its row name it the same
//! way, so renaming one cannot leave a claim "not measured".

/// A variant of the overfitting experiments that a claim reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VariantKey {
    /// The overfitting net for the whole epoch budget.
    WholeBudget,
    /// Early stopping on validation loss, patience 3, restoring the best.
    EarlyStoppingOnLoss,
    /// Early stopping on validation accuracy, patience 3, restoring the best.
    EarlyStoppingOnAccuracy,
    /// No penalty.
    NoPenalty,
    /// L2 1e-4.
    L2,
    /// L1 1e-5.
    L1,
    /// L1 1e-5 and L2 1e-4.
    L1L2,
    /// Max-norm 1.
    MaxNorm,
    /// The overfitting net without dropout.
    OverfittingNoDropout,
    /// The overfitting net with dropout 0.2 on the inputs, 0.5 hidden.
    OverfittingDropout,
    /// The same with max-norm 1.
    OverfittingDropoutMaxNorm,
    /// The under-fitting sigmoid net without dropout.
    UnderfittingNoDropout,
    /// The under-fitting sigmoid net with dropout.
    UnderfittingDropout,
}

impl VariantKey {
    /// Every key.
    pub const ALL: [VariantKey; 13] = [
        Self::WholeBudget,
        Self::EarlyStoppingOnLoss,
        Self::EarlyStoppingOnAccuracy,
        Self::NoPenalty,
        Self::L2,
        Self::L1,
        Self::L1L2,
        Self::MaxNorm,
        Self::OverfittingNoDropout,
        Self::OverfittingDropout,
        Self::OverfittingDropoutMaxNorm,
        Self::UnderfittingNoDropout,
        Self::UnderfittingDropout,
    ];

    /// The variant's name in tables, `results.json` and run folders.
    pub fn label(self) -> &'static str {
        match self {
            Self::WholeBudget => "whole budget",
            Self::EarlyStoppingOnLoss => "early stopping on valid loss, patience 3",
            Self::EarlyStoppingOnAccuracy => "early stopping on valid accuracy, patience 3",
            Self::NoPenalty => "none",
            Self::L2 => "L2 1e-4",
            Self::L1 => "L1 1e-5",
            Self::L1L2 => "L1 1e-5 + L2 1e-4",
            Self::MaxNorm => "max-norm 1",
            Self::OverfittingNoDropout => "overfitting net, no dropout",
            Self::OverfittingDropout => "overfitting net, dropout 0.2 in / 0.5 hidden",
            Self::OverfittingDropoutMaxNorm => "overfitting net, dropout + max-norm 1",
            Self::UnderfittingNoDropout => "sigmoid net, no dropout",
            Self::UnderfittingDropout => "sigmoid net, dropout 0.2 in / 0.5 hidden",
        }
    }
}
