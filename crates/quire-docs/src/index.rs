//! The chunk index: tantivy BM25 over title and body, English stemming, one writer,
//! atomic commits, deletes by document id. Hits carry document, page and span.

use std::path::Path;

use serde::{Deserialize, Serialize};
use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, Value, STORED, STRING,
};
use tantivy::{doc, Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

use crate::chunk::Chunk;
use crate::error::{DocsError, Result};

/// Writer memory budget; tantivy splits it across its indexing threads.
const WRITER_BYTES: usize = 64 * 1024 * 1024;

#[derive(Clone, Copy)]
struct Fields {
    doc_id: Field,
    path: Field,
    title: Field,
    body: Field,
    page: Field,
    span_start: Field,
    span_end: Field,
}

/// A search result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hit {
    pub doc_id: String,
    pub path: String,
    pub title: String,
    pub page: u32,
    pub score: f32,
    pub text: String,
    pub span: (usize, usize),
}

/// The chunk index, on disk or in memory.
pub struct ChunkIndex {
    index: Index,
    reader: IndexReader,
    writer: IndexWriter,
    fields: Fields,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let text = TextOptions::default()
        .set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer("en_stem")
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        )
        .set_stored();
    let fields = Fields {
        doc_id: b.add_text_field("doc_id", STRING | STORED),
        path: b.add_text_field("path", STORED),
        title: b.add_text_field("title", text.clone()),
        body: b.add_text_field("body", text),
        page: b.add_u64_field("page", STORED),
        span_start: b.add_u64_field("span_start", STORED),
        span_end: b.add_u64_field("span_end", STORED),
    };
    (b.build(), fields)
}

impl ChunkIndex {
    /// Opens the index in `dir`, creating it if empty.
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|source| DocsError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let (schema, _) = schema();
        let mmap = tantivy::directory::MmapDirectory::open(dir)?;
        let index = Index::open_or_create(mmap, schema)?;
        Self::with_index(index)
    }

    /// An index that lives in memory (evaluation and tests).
    pub fn in_memory() -> Result<Self> {
        let (schema, _) = schema();
        Self::with_index(Index::create_in_ram(schema))
    }

    fn with_index(index: Index) -> Result<Self> {
        let (_, fields) = schema();
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let writer = index.writer(WRITER_BYTES)?;
        Ok(Self {
            index,
            reader,
            writer,
            fields,
        })
    }

    /// Adds chunks of one document; visible after [`ChunkIndex::commit`].
    pub fn add(&mut self, path: &str, title: &str, chunks: &[Chunk]) -> Result<()> {
        let f = self.fields;
        for c in chunks {
            self.writer.add_document(doc!(
                f.doc_id => c.doc_id.as_str(),
                f.path => path,
                f.title => title,
                f.body => c.text.as_str(),
                f.page => c.page as u64,
                f.span_start => c.span.0 as u64,
                f.span_end => c.span.1 as u64,
            ))?;
        }
        Ok(())
    }

    /// Removes every chunk of a document; visible after [`ChunkIndex::commit`].
    pub fn remove(&mut self, doc_id: &str) {
        self.writer
            .delete_term(Term::from_field_text(self.fields.doc_id, doc_id));
    }

    /// Makes all changes since the last commit durable and visible, atomically.
    pub fn commit(&mut self) -> Result<()> {
        self.commit_with(None)
    }

    /// Commits with a payload stored atomically alongside the chunks (the library keeps its
    /// manifest there, so index and manifest can never disagree after a crash).
    pub fn commit_with(&mut self, payload: Option<&str>) -> Result<()> {
        let mut prepared = self.writer.prepare_commit()?;
        if let Some(p) = payload {
            prepared.set_payload(p);
        }
        prepared.commit()?;
        self.reader.reload()?;
        Ok(())
    }

    /// The payload of the last commit.
    pub fn payload(&self) -> Result<Option<String>> {
        Ok(self.index.load_metas()?.payload)
    }

    pub fn num_chunks(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// The `k` best chunks for `query` by BM25 over title and body. The query is free text:
    /// it is analysed like the documents, never parsed as query syntax.
    pub fn search(&self, query: &str, k: usize) -> Result<Vec<Hit>> {
        let f = self.fields;
        let mut analyzer = self.index.tokenizer_for_field(f.body)?;
        let mut terms = Vec::new();
        let mut stream = analyzer.token_stream(query);
        while stream.advance() {
            terms.push(stream.token().text.clone());
        }
        terms.sort();
        terms.dedup();
        if terms.is_empty() || k == 0 {
            return Ok(Vec::new());
        }
        let clauses: Vec<(Occur, Box<dyn Query>)> = terms
            .iter()
            .flat_map(|t| {
                [f.title, f.body].map(|field| {
                    let q: Box<dyn Query> = Box::new(TermQuery::new(
                        Term::from_field_text(field, t),
                        IndexRecordOption::WithFreqs,
                    ));
                    (Occur::Should, q)
                })
            })
            .collect();
        let query = BooleanQuery::new(clauses);
        let searcher = self.reader.searcher();
        let top = searcher.search(&query, &TopDocs::with_limit(k).order_by_score())?;
        top.into_iter()
            .map(|(score, addr)| {
                let d: TantivyDocument = searcher.doc(addr)?;
                let s = |field| {
                    d.get_first(field)
                        .and_then(|v| v.as_str())
                        .unwrap_or_default()
                        .to_string()
                };
                let n = |field| {
                    d.get_first(field)
                        .and_then(|v| v.as_u64())
                        .unwrap_or_default()
                };
                Ok(Hit {
                    doc_id: s(f.doc_id),
                    path: s(f.path),
                    title: s(f.title),
                    page: n(f.page) as u32,
                    score,
                    text: s(f.body),
                    span: (n(f.span_start) as usize, n(f.span_end) as usize),
                })
            })
            .collect()
    }
}
