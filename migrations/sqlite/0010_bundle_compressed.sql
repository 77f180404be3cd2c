-- The mapped Bundle of a record is stored zstd-compressed in bundle_zstd (about a tenth of the
-- text); rows written before this keep their text in bundle, later ones leave it empty.
ALTER TABLE records ADD COLUMN bundle_zstd BLOB;
