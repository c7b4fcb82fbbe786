fn main() {
    deepstyle_torch_link::emit_link_args();
}
