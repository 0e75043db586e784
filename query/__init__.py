"""Everything that reads the stored vectors: search, labels, classifiers, rescoring,
exports.  It runs a model only to embed a query clip."""
