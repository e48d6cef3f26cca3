//! A folder of unlabelled photos: every image is a source of its own, split by source.
