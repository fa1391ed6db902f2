//! The canonical JSON a spec hash is taken of: object keys sorted, unset
//! values (`null`, `[]`, `{}`) left out of objects, bottom up, so a field
//! added to the model later changes no existing hash until a spec sets it.
//!
//! Written straight from `Serialize`, one buffer per value, byte for byte
//! what `serde_json::to_value` → prune → `to_vec` wrote before (the hashes
//! on running services must never change with a release: every service
//! would be rewritten). That route built a `Value` tree and then a second
//! one, and was most of a no-op plan's time; `tests` keeps it as the
//! reference the output is compared with. It lives with the model (and is
//! built, like the loader, for speed): the controller hashes what
//! [`service`] and [`network`] write.

use std::borrow::Cow;

use serde::ser::{self, Error as _, Serialize};

/// A service as canonical JSON, `after` left out (it orders work; it is
/// not part of the Docker object).
pub fn service(service: &crate::Service) -> Vec<u8> {
    if service.after.is_empty() {
        return to_vec(service).unwrap_or_default();
    }
    let mut without = service.clone();
    without.after.clear();
    to_vec(&without).unwrap_or_default()
}

/// A network as canonical JSON.
pub fn network(network: &crate::Network) -> Vec<u8> {
    to_vec(network).unwrap_or_default()
}

/// `value` as canonical JSON. Serializing plain data with string keys
/// cannot fail; an empty body would only make every object look changed,
/// never lose data.
fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    value.serialize(Canonical)
}

/// Unset values are dropped from the object that holds them.
fn is_unset(json: &[u8]) -> bool {
    matches!(json, b"null" | b"[]" | b"{}")
}

/// A leaf as serde_json writes it (the same formatter the `Value` route used).
fn leaf<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::new();
    serde_json::to_writer(&mut out, value)?;
    Ok(out)
}

/// An object of `fields`: unset ones left out, sorted by key, a key given
/// twice keeping its last value (as a map insert does).
fn object(mut fields: Vec<(Key, Vec<u8>)>) -> Vec<u8> {
    fields.retain(|(_, value)| !is_unset(value));
    // Stable: of equal keys the last written stays last, and is kept.
    fields.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = Vec::with_capacity(
        2 + fields
            .iter()
            .map(|(k, v)| k.len() + v.len() + 4)
            .sum::<usize>(),
    );
    out.push(b'{');
    let mut first = true;
    for (index, (key, value)) in fields.iter().enumerate() {
        if fields.get(index + 1).is_some_and(|(next, _)| next == key) {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        // A key is a JSON string, escaped as serde_json escapes it (writing
        // a string into a Vec cannot fail).
        let _ = serde_json::to_writer(&mut out, key.as_ref());
        out.push(b':');
        out.extend_from_slice(value);
    }
    out.push(b'}');
    out
}

fn array(items: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + items.iter().map(|i| i.len() + 1).sum::<usize>());
    out.push(b'[');
    for (index, item) in items.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        out.extend_from_slice(item);
    }
    out.push(b']');
    out
}

/// `{"variant": value}`, as serde_json writes an enum's data-carrying variant.
fn variant(name: &'static str, value: Vec<u8>) -> Vec<u8> {
    object(vec![(Cow::Borrowed(name), value)])
}

/// An object's key: a struct's field names are static, a map's are made.
type Key = Cow<'static, str>;

#[derive(Clone, Copy)]
struct Canonical;

impl ser::Serializer for Canonical {
    type Ok = Vec<u8>;
    type Error = serde_json::Error;
    type SerializeSeq = Items;
    type SerializeTuple = Items;
    type SerializeTupleStruct = Items;
    type SerializeTupleVariant = Items;
    type SerializeMap = Fields;
    type SerializeStruct = Fields;
    type SerializeStructVariant = Fields;

    fn serialize_bool(self, v: bool) -> Result<Vec<u8>, Self::Error> {
        leaf(&v)
    }
    fn serialize_i8(self, v: i8) -> Result<Vec<u8>, Self::Error> {
        leaf(&v)
    }
    fn serialize_i16(self, v: i16) -> Result<Vec<u8>, Self::Error> {
        leaf(&v)
    }
    fn serialize_i32(self, v: i32) -> Result<Vec<u8>, Self::Error> {
        leaf(&v)
    }
    fn serialize_i64(self, v: i64) -> Result<Vec<u8>, Self::Error> {
        leaf(&v)
    }
    fn serialize_i128(self, v: i128) -> Result<Vec<u8>, Self::Error> {
        // `Value` holds 64 bits: what does not fit was an error there too.
        match (i64::try_from(v), u64::try_from(v)) {
            (Ok(small), _) => leaf(&small),
            (_, Ok(large)) => leaf(&large),
            _ => Err(Self::Error::custom("number out of range")),
        }
    }
    fn serialize_u8(self, v: u8) -> Result<Vec<u8>, Self::Error> {
        leaf(&v)
    }
    fn serialize_u16(self, v: u16) -> Result<Vec<u8>, Self::Error> {
        leaf(&v)
    }
    fn serialize_u32(self, v: u32) -> Result<Vec<u8>, Self::Error> {
        leaf(&v)
    }
    fn serialize_u64(self, v: u64) -> Result<Vec<u8>, Self::Error> {
        leaf(&v)
    }
    fn serialize_u128(self, v: u128) -> Result<Vec<u8>, Self::Error> {
        u64::try_from(v)
            .map_err(|_| Self::Error::custom("number out of range"))
            .and_then(|v| leaf(&v))
    }
    fn serialize_f32(self, v: f32) -> Result<Vec<u8>, Self::Error> {
        // `Value` kept an f32 as the f64 it converts to.
        self.serialize_f64(f64::from(v))
    }
    fn serialize_f64(self, v: f64) -> Result<Vec<u8>, Self::Error> {
        // Not finite: `Value::Null`, which is unset.
        if v.is_finite() {
            leaf(&v)
        } else {
            Ok(b"null".to_vec())
        }
    }
    fn serialize_char(self, v: char) -> Result<Vec<u8>, Self::Error> {
        leaf(&v)
    }
    fn serialize_str(self, v: &str) -> Result<Vec<u8>, Self::Error> {
        leaf(v)
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Vec<u8>, Self::Error> {
        leaf(v)
    }
    fn serialize_none(self) -> Result<Vec<u8>, Self::Error> {
        Ok(b"null".to_vec())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Vec<u8>, Self::Error> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<Vec<u8>, Self::Error> {
        Ok(b"null".to_vec())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<Vec<u8>, Self::Error> {
        Ok(b"null".to_vec())
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<Vec<u8>, Self::Error> {
        leaf(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<Vec<u8>, Self::Error> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant_name: &'static str,
        value: &T,
    ) -> Result<Vec<u8>, Self::Error> {
        Ok(variant(variant_name, value.serialize(self)?))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Items, Self::Error> {
        Ok(Items::new(None, len.unwrap_or(0)))
    }
    fn serialize_tuple(self, len: usize) -> Result<Items, Self::Error> {
        Ok(Items::new(None, len))
    }
    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<Items, Self::Error> {
        Ok(Items::new(None, len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Items, Self::Error> {
        Ok(Items::new(Some(variant), len))
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Fields, Self::Error> {
        Ok(Fields::new(None, len.unwrap_or(0)))
    }
    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<Fields, Self::Error> {
        Ok(Fields::new(None, len))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Fields, Self::Error> {
        Ok(Fields::new(Some(variant), len))
    }
}

/// An array being written (inside `{"variant": ...}` for a tuple variant).
struct Items {
    variant: Option<&'static str>,
    items: Vec<Vec<u8>>,
}

impl Items {
    fn new(variant: Option<&'static str>, len: usize) -> Self {
        Self {
            variant,
            items: Vec::with_capacity(len),
        }
    }

    fn push<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), serde_json::Error> {
        self.items.push(value.serialize(Canonical)?);
        Ok(())
    }

    fn finish(self) -> Vec<u8> {
        let items = array(&self.items);
        match self.variant {
            Some(name) => variant(name, items),
            None => items,
        }
    }
}

impl ser::SerializeSeq for Items {
    type Ok = Vec<u8>;
    type Error = serde_json::Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Self::Error> {
        self.push(value)
    }
    fn end(self) -> Result<Vec<u8>, Self::Error> {
        Ok(self.finish())
    }
}

impl ser::SerializeTuple for Items {
    type Ok = Vec<u8>;
    type Error = serde_json::Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Self::Error> {
        self.push(value)
    }
    fn end(self) -> Result<Vec<u8>, Self::Error> {
        Ok(self.finish())
    }
}

impl ser::SerializeTupleStruct for Items {
    type Ok = Vec<u8>;
    type Error = serde_json::Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Self::Error> {
        self.push(value)
    }
    fn end(self) -> Result<Vec<u8>, Self::Error> {
        Ok(self.finish())
    }
}

impl ser::SerializeTupleVariant for Items {
    type Ok = Vec<u8>;
    type Error = serde_json::Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Self::Error> {
        self.push(value)
    }
    fn end(self) -> Result<Vec<u8>, Self::Error> {
        Ok(self.finish())
    }
}

/// An object being written (inside `{"variant": ...}` for a struct variant).
struct Fields {
    variant: Option<&'static str>,
    fields: Vec<(Key, Vec<u8>)>,
    /// A map's key, waiting for its value.
    key: Option<String>,
}

impl Fields {
    fn new(variant: Option<&'static str>, len: usize) -> Self {
        Self {
            variant,
            fields: Vec::with_capacity(len),
            key: None,
        }
    }

    fn finish(self) -> Vec<u8> {
        let fields = object(self.fields);
        match self.variant {
            Some(name) => variant(name, fields),
            None => fields,
        }
    }
}

impl ser::SerializeMap for Fields {
    type Ok = Vec<u8>;
    type Error = serde_json::Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Self::Error> {
        self.key = Some(map_key(key)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Self::Error> {
        let key = self
            .key
            .take()
            .ok_or_else(|| Self::Error::custom("a map value without its key"))?;
        self.fields
            .push((Cow::Owned(key), value.serialize(Canonical)?));
        Ok(())
    }
    fn end(self) -> Result<Vec<u8>, Self::Error> {
        Ok(self.finish())
    }
}

impl ser::SerializeStruct for Fields {
    type Ok = Vec<u8>;
    type Error = serde_json::Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Self::Error> {
        self.fields
            .push((Cow::Borrowed(key), value.serialize(Canonical)?));
        Ok(())
    }
    fn end(self) -> Result<Vec<u8>, Self::Error> {
        Ok(self.finish())
    }
}

impl ser::SerializeStructVariant for Fields {
    type Ok = Vec<u8>;
    type Error = serde_json::Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Self::Error> {
        self.fields
            .push((Cow::Borrowed(key), value.serialize(Canonical)?));
        Ok(())
    }
    fn end(self) -> Result<Vec<u8>, Self::Error> {
        Ok(self.finish())
    }
}

/// A map key as the string `Value` made of it (a string as is, a number or
/// a bool written out; anything else was refused there too).
fn map_key<T: Serialize + ?Sized>(key: &T) -> Result<String, serde_json::Error> {
    match serde_json::to_value(key)? {
        serde_json::Value::String(text) => Ok(text),
        serde_json::Value::Number(number) => Ok(number.to_string()),
        serde_json::Value::Bool(flag) => Ok(flag.to_string()),
        _ => Err(serde_json::Error::custom("key must be a string")),
    }
}

#[cfg(test)]
mod tests;
