// No console window behind the app on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() -> std::process::ExitCode {
    // Started as the isolated PDF reader (the engine reads PDFs in a child process that
    // is this same executable): do that and nothing else.
    if let Some(code) = quire_engine::docs::pdf::run_worker_if_requested() {
        return std::process::ExitCode::from(code.clamp(0, 255) as u8);
    }
    quire_desktop::run();
    std::process::ExitCode::SUCCESS
}
