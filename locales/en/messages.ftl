# Parent Connection's messages to families, in English (the reference locale).
# Every message here exists in every other locale (tests: i18n::tests).
# Names, titles and teacher text are placeables: they are never translated.

## Lists and dates

# Two or more names: "Ava and Ben", "Ava, Ben and Cy" ($first holds all but the last).
list-and = { $first } and { $last }
list-separator = {", "}

# A due time on a digest line: "Mon Nov 23, 8:00 AM".
due-time = { $weekday } { $month } { $day }, { $time }
# The date of a digest's subject: "Nov 23, 2026".
subject-date = { $month } { $day }, { $year }
# Hours and minutes: "8:00 AM".
clock = { $hour12 }:{ $minute } { $ampm }

weekday-1 = Mon
weekday-2 = Tue
weekday-3 = Wed
weekday-4 = Thu
weekday-5 = Fri
weekday-6 = Sat
weekday-7 = Sun

month-1 = Jan
month-2 = Feb
month-3 = Mar
month-4 = Apr
month-5 = May
month-6 = Jun
month-7 = Jul
month-8 = Aug
month-9 = Sep
month-10 = Oct
month-11 = Nov
month-12 = Dec

## Invitations

invitation-subject = { $teacher } invited you to Parent Connection
invitation-hello = Hello { $guardian },
invitation-invited = { $teacher } invited you to chat about { $student } in Parent Connection, the way { $district } connects teachers with the parents and guardians of their students.
invitation-join-here = Join here:
invitation-ignore = If you were not expecting this message, you can ignore it; nothing happens until you join.
invitation-guardian-fallback = there
invitation-student-fallback = your child
invitation-sms = { $sender }: { $teacher } invited you to chat about { $student }. Join: { $link } Reply STOP to opt out.

## The weekly digest

digest-subject = { $tenant }: assignments for { $children } (week of { $date })
digest-hello = Hello { $guardian },
digest-intro = Here are the assignments of { $children } at { $tenant }: what was due in the past
    week and what is due in the coming week. Times are in { $zone }.
digest-due-past = Due in the past week:
digest-due-coming = Due in the coming week:
# $count chooses the plural form; $points is the number as written.
digest-points = { $count ->
        [one] ({ $points } point)
       *[other] ({ $points } points)
    }
digest-why = You receive this weekly summary because you are a parent or guardian contact of
    { $children } at { $tenant }. Questions about an assignment go to the class's teacher.
digest-stop = To stop receiving this weekly summary, open this link and confirm (invitations and
    messages from teachers are not affected):
