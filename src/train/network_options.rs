//! The residual network's shape as command-line options: `train --architecture resnet` and every photo model.

use clap::Args;

use crate::model::card::{Pooling, Residual};

/// The residual network's shape.
#[derive(Debug, Clone, Args)]
pub struct ResidualOptions {
    /// Output channels of the stem's convolution.
    #[arg(long, default_value_t = 32)]
    pub stem_width: i64,
    /// How much the stem shrinks the input: 1, 2 or 4.
    #[arg(long, default_value_t = 4)]
    pub stem_stride: i64,
    /// Channels of each stage; each stage after the first halves the resolution.
    #[arg(long, default_value = "32,64,128,256", value_delimiter = ',')]
    pub stage_widths: Vec<i64>,
    /// Basic blocks in each stage.
    #[arg(long, default_value = "1,1,1,1", value_delimiter = ',')]
    pub blocks_per_stage: Vec<usize>,
    /// Global pooling: generalised mean with a learnt exponent, or average.
    #[arg(long, value_enum, default_value_t = Pooling::Gem)]
    pub pooling: Pooling,
}

impl ResidualOptions {
    pub fn residual(&self) -> Residual {
        let mut residual = Residual {
            depth: 0,
            stem_width: self.stem_width,
            stem_stride: self.stem_stride,
            stage_widths: self.stage_widths.clone(),
            blocks_per_stage: self.blocks_per_stage.clone(),
            pooling: self.pooling,
        };
        residual.depth = residual.computed_depth();
        residual
    }
}
