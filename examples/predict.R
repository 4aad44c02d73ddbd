#!/usr/bin/env Rscript
# Ask a running `carnn serve` for the MPG of a few cars, and show the error it gives for a bad one.
#
#   Rscript examples/predict.R http://127.0.0.1:5001
#
# The URL defaults to $CARNN_URL, then http://127.0.0.1:5001; a service with a token needs
# $CARNN_API_TOKEN. Needs httr and jsonlite (Debian: apt-get install r-cran-httr r-cran-jsonlite).
# Exits 1 with a clear message when the service cannot be reached or refuses the token.

suppressPackageStartupMessages({
  library(httr)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)
url <- if (length(args) >= 1) args[[1]] else Sys.getenv("CARNN_URL", "http://127.0.0.1:5001")
url <- sub("/+$", "", url)
token <- Sys.getenv("CARNN_API_TOKEN", "")

# One row per car, one column per field (README, "The input fields"); NA is sent as null.
cars <- data.frame(
  name = c("chevrolet chevelle malibu", "toyota corolla", "vw rabbit c (diesel)"),
  cylinders = c(8, 4, 4),
  displacement = c(307, 97, 90),
  horsepower = c(130, 75, 48),
  weight = c(3504, 2155, 2085),
  acceleration = c(12, 16.4, 21.7),
  year = c(70, 76, 80),
  origin = c(1, 3, NA)
)

# A condition carrying the service's error answer: status, error_code, message and the list of
# {row, field, expected, value} (a data frame).
service_error <- function(status, answer) {
  structure(
    class = c("carnn_error", "error", "condition"),
    list(message = answer$message, call = NULL, status = status, errors = answer$errors)
  )
}

predict_mpg <- function(records) {
  headers <- c("Content-Type" = "application/json")
  if (nzchar(token)) headers[["Authorization"]] <- paste("Bearer", token)
  body <- toJSON(list(dataframe_records = records), auto_unbox = TRUE, na = "null", digits = NA)
  response <- tryCatch(
    POST(paste0(url, "/invocations"), body = body, add_headers(.headers = headers), timeout(30)),
    error = function(e) stop(sprintf("cannot reach %s: %s", url, conditionMessage(e)), call. = FALSE)
  )
  text <- content(response, as = "text", encoding = "UTF-8")
  answer <- tryCatch(fromJSON(text), error = function(e) list(message = substr(text, 1, 200)))
  if (status_code(response) != 200) stop(service_error(status_code(response), answer))
  answer$predictions$mpg
}

main <- function() {
  mpg <- predict_mpg(cars)
  cat(sprintf("MPG from %s:\n", url))
  cat(sprintf("  %-28s %5.1f MPG  %5.1f l/100 km\n", cars$name, mpg, 235.214583 / mpg), sep = "")

  bad <- cars[1, ]
  bad$weight <- -3504
  cat("\nA car with a negative weight:\n")
  tryCatch(predict_mpg(bad), carnn_error = function(err) {
    if (is.null(err$errors) || length(err$errors) == 0) stop(err)  # not a field error
    first <- err$errors[1, ]
    cat(sprintf("  refused (HTTP %d): field %s, row %d, has %s; expected %s\n",
                err$status, first$field, first$row, first$value, first$expected))
  })
}

tryCatch(main(), error = function(err) {
  status <- if (inherits(err, "carnn_error")) sprintf(" (HTTP %d)", err$status) else ""
  message(sprintf("error%s: %s", status, conditionMessage(err)))
  quit(status = 1)
})
