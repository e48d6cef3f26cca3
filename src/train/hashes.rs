//! Perceptual hashes (pHash, dHash): the baseline every photo model is measured against.
