//! A service's `backup` block and its `s3` repository.

use crate::grammar::Place;
use crate::model::*;
use crate::schema;
use crate::syntax::Entry;

use super::{not_a_field, Lower};

impl Lower<'_> {
    pub(super) fn backup(&mut self, e: &Entry) -> BackupDef {
        let mut b = BackupDef {
            schedule: None,
            retention: None,
            s3: None,
            span: e.span(),
        };
        let entries = self.block(e);
        self.duplicates(entries, "a backup block");
        for f in entries {
            if f.key.name == "s3" {
                b.s3 = Some(Box::new(self.s3(f)));
                continue;
            }
            self.no_label(f);
            self.no_kind(f);
            let Some(v) = self.assigned(f) else { continue };
            match f.key.name.as_str() {
                "schedule" => b.schedule = self.schedule(v),
                "retention" => b.retention = self.integer(v, "a number of days"),
                _ => {
                    let d = not_a_field(&f.key, &schema::BACKUP);
                    self.push(d);
                }
            }
        }
        b
    }

    /// `s3 { ... }`: every string checked against the grammar of where it
    /// lands (pgbackrest.conf).
    fn s3(&mut self, e: &Entry) -> S3Def {
        let mut s3 = S3Def {
            bucket: None,
            endpoint: None,
            region: None,
            path: None,
            access_key: None,
            secret_key: None,
            span: e.span(),
        };
        let entries = self.block(e);
        for (f, v) in self.settings(entries, "an s3 block") {
            let mut text = |place: Place| {
                let s = self.string(v);
                self.in_grammar(place, s)
            };
            match f.key.name.as_str() {
                "bucket" => s3.bucket = text(Place::Bucket),
                "endpoint" => s3.endpoint = text(Place::S3Endpoint),
                "region" => s3.region = text(Place::Region),
                "path" => s3.path = text(Place::BucketPath),
                "access_key" => s3.access_key = self.expr(v),
                "secret_key" => s3.secret_key = self.expr(v),
                _ => {
                    let d = not_a_field(&f.key, &schema::S3);
                    self.push(d);
                }
            }
        }
        s3
    }
}
